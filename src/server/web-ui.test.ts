/**
 * The browser UI end to end in Debian's chromium (headless, software WebGL via SwiftShader) driven by
 * playwright-core: pick a photo, submit, follow progress, and check that every result shows up and that the Spark
 * viewer's canvas really draws the Gaussians (non-white pixels in a screenshot). The job runner is SynthRunner,
 * whose PLY is a known head, and then the real pipeline on the tiny official-layout test weights.
 *
 * Skips only when no chromium binary exists (scripts/setup-and-test.sh installs Debian's package in CI).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type RunningServer } from './app.ts';
import { SynthRunner } from './testing/synth-runner.ts';
import { PipelineRunner } from './pipeline-runner.ts';
import { makeTinyWeights } from '../pipeline/testing/tiny-weights.ts';
import { ensureWebBuilt } from './web-build.ts';
import { testPhoto } from './testing/client.ts';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from './testing/browser.ts';

const skip = chromiumMissing;
const EXAMPLES = new URL('../../examples', import.meta.url).pathname;

/** An <input type=range> as seen through evaluate() (no DOM types in the node test build). */
interface Range { min: string; max: string; step: string; value: string }

/** What the tests read of an element (no DOM types in the node test build). */
interface ElementState { hidden: boolean; complete: boolean; naturalWidth: number; readyState: number }

/**
 * Polls `check` on the element's state until it holds. (page.waitForFunction would evaluate a string in the page,
 * which the app's Content-Security-Policy rightly forbids; locator.evaluate is not affected.)
 */
async function until(page: Page, selector: string, check: (e: ElementState) => boolean, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const state = await page.locator(selector).evaluate((e) => {
      const x = e as unknown as ElementState;
      return { hidden: x.hidden, complete: x.complete, naturalWidth: x.naturalWidth, readyState: x.readyState };
    });
    if (check(state)) return;
    if (Date.now() > end) throw new Error(`${selector}: condition not met within ${timeoutMs} ms (${JSON.stringify(state)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'facelift-webui-'));
let srv: RunningServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  assert.ok(ensureWebBuilt(), 'vite is not installed (npm ci installs it)');
  srv = await startServer({ runner: new SynthRunner({ resolution: 96, frames: 8, spacing: 0.02 }), root: join(tmp, 'jobs'), port: 0, examplesDir: EXAMPLES, log: () => {} });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  await srv?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Share of pixels that differ clearly from white. */
async function nonWhiteFraction(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = 0; i < data.length; i += 3) if (data[i]! < 235 || data[i + 1]! < 235 || data[i + 2]! < 235) n++;
  return n / (info.width * info.height);
}

test('upload a photo, watch progress, see all results and the Spark viewer drawing the head', { skip, timeout: 240_000 }, async (t) => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  // Software WebGL on a busy 2-core machine can take seconds per frame: generous waits, a small viewport.
  page.setDefaultTimeout(90_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(srv.url);

  // The reference's controls, ranges and defaults.
  assert.equal(await page.locator('#autoCrop').isChecked(), true);
  const rangeOf = (sel: string) => page.locator(sel).evaluate((e) => { const i = e as unknown as Range; return [i.min, i.max, i.step, i.value]; });
  assert.deepEqual(await rangeOf('#guidanceScale'), ['1', '10', '0.1', '3']);
  assert.deepEqual(await rangeOf('#steps'), ['10', '100', '5', '50']);
  assert.equal(await page.locator('#seed').inputValue(), '4');
  assert.equal(await page.locator('.example').count(), 4);
  assert.equal(await page.locator('#submit').isDisabled(), true, 'nothing to submit before a photo is chosen');

  // A file that is not an image: the user sees the server's reason.
  await page.setInputFiles('#file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all') });
  await page.click('#submit');
  await page.locator('#error:not([hidden])').waitFor();
  assert.match(await page.locator('#error').innerText(), /not an image/);

  await page.setInputFiles('#file', { name: 'me.png', mimeType: 'image/png', buffer: await testPhoto('png', 240, 300) });
  await page.locator('#seed').fill('21');
  await page.click('#submit');
  await page.locator('#stages li').first().waitFor();
  assert.deepEqual(await page.locator('#stages li').evaluateAll((els) => els.map((e) => e.getAttribute('data-stage'))),
    ['preprocess', 'synthesize', 'render', 'turntable', 'write']);
  await page.locator('#viewer[data-state="ready"]').waitFor({ timeout: 120_000 });
  assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').innerText());
  assert.match(await page.locator('#status-line').innerText(), /^Done in/);

  // Every result is shown and loads.
  for (const id of ['#r-input', '#r-multiview', '#r-output']) {
    await until(page, id, (i) => i.complete && i.naturalWidth > 0);
  }
  assert.equal(await page.locator('#r-multiview').evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth), 6 * 96);
  await until(page, '#r-video', (v) => v.readyState >= 1);
  for (const [id, re] of [['#dl-ply', /gaussians\.ply\?download$/], ['#dl-mp4', /turntable\.mp4\?download$/], ['#dl-zip', /\.zip$/]] as const) {
    assert.match((await page.locator(id).getAttribute('href'))!, re);
  }
  const splats = Number(await page.locator('#viewer').getAttribute('data-splats'));
  assert.ok(splats > 1000, `viewer loaded ${splats} splats`);

  // The viewer canvas draws the head: enough non-white pixels, concentrated in the middle.
  await page.waitForTimeout(1500);
  const viewer = page.locator('#viewer canvas');
  const shot = await viewer.screenshot();
  const keep = process.env.FACELIFT_SCREENSHOT_DIR;
  if (keep) writeFileSync(join(keep, 'viewer-front.png'), shot);
  const front = await nonWhiteFraction(shot);
  assert.ok(front > 0.03, `only ${(front * 100).toFixed(2)}% of the viewer shows the head`);

  // The viewer's starting camera is FaceLift's front camera (radius 2.7, 50° field of view, +Z up): the square
  // middle of the canvas matches the server's own front render (output.png tile 0) far better than the side view.
  const outputPng = Buffer.from(await (await fetch(`${srv.url}${await page.locator('#r-output').getAttribute('src')}`)).arrayBuffer());
  const tile = (k: number) => sharp(outputPng).extract({ left: k * 96, top: 0, width: 96, height: 96 }).removeAlpha().raw().toBuffer();
  const meta = await sharp(shot).metadata();
  const side = Math.min(meta.width!, meta.height!);
  const centre = await sharp(shot).extract({ left: Math.floor((meta.width! - side) / 2), top: Math.floor((meta.height! - side) / 2), width: side, height: side })
    .resize(96, 96).removeAlpha().raw().toBuffer();
  const mad = (a: Buffer, b: Buffer) => a.reduce((acc, v, i) => acc + Math.abs(v - b[i]!), 0) / a.length;
  const [toFront, toSide] = [mad(centre, await tile(0)), mad(centre, await tile(2))];
  t.diagnostic(`viewer centre vs front render: mean |Δ| ${toFront.toFixed(1)}; vs side render ${toSide.toFixed(1)}; head covers ${(front * 100).toFixed(1)}%`);
  assert.ok(toFront < 20 && toFront < 0.6 * toSide, `viewer vs front render ${toFront.toFixed(1)}, vs side render ${toSide.toFixed(1)} (mean |Δ| of 255)`);

  // Orbit: dragging turns the head, so the picture changes.
  const box = (await viewer.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 200, box.y + box.height / 2, { steps: 4 });
  await page.mouse.up();
  await page.waitForTimeout(1000);
  const turned = await viewer.screenshot();
  if (keep) writeFileSync(join(keep, 'viewer-orbit.png'), turned);
  assert.ok(!turned.equals(shot), 'orbiting changed the view');
  assert.ok(await nonWhiteFraction(turned) > 0.02);
  if (keep) writeFileSync(join(keep, 'page.png'), await page.screenshot({ fullPage: true }));

  // The address names the job: a reload shows the same results again.
  assert.match(page.url(), /#[A-Za-z0-9_-]{22}$/);
  await page.reload();
  await page.locator('#viewer[data-state="ready"]').waitFor();
  assert.match(await page.locator('#status-line').innerText(), /^Done in/);
  assert.equal(await page.locator('#r-multiview').evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth), 6 * 96);
  // An unknown id in the address: the user is told, the page stays usable.
  await page.goto('about:blank'); // (a hash-only change would not load the page again)
  await page.goto(`${srv.url}/#AAAAAAAAAAAAAAAAAAAAAA`);
  await page.locator('#error:not([hidden])').waitFor();
  assert.match(await page.locator('#error').innerText(), /no such job/);

  // The only console errors expected: the refused upload's 415 and the unknown job's 404 above.
  assert.deepEqual(consoleErrors.filter((e) => !/status of (415|404)/.test(e)), []);
  await page.close();
});

test('clicking an example selects it as the photo; so does dropping a file on the drop zone', { skip, timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(srv.url);
  const png = (await testPhoto('png', 130, 170)).toString('base64');
  // Runs in the page (a string, since this file is compiled without the DOM's types).
  const dt = await page.evaluateHandle(`(() => {
    const bytes = Uint8Array.from(atob('${png}'), (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
    return d;
  })()`);
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
  await until(page, '#preview', (i) => !i.hidden && i.complete && i.naturalWidth === 130);
  await page.locator('.example').first().click();
  await until(page, '#preview', (i) => !i.hidden && i.complete && i.naturalWidth === 512);
  assert.equal(await page.locator('#submit').isDisabled(), false);
  await page.close();
});

test('with the real pipeline (tiny official-layout weights): an example goes through and the viewer shows all its Gaussians', { skip, timeout: 240_000 }, async () => {
  const runner = new PipelineRunner({ weights: makeTinyWeights(join(tmp, 'weights')), matting: 'none', cacheDir: join(tmp, 'cache'), threads: 2, renderThreads: 2, turntableFrames: 8 });
  const real = await startServer({ runner, root: join(tmp, 'real-jobs'), port: 0, examplesDir: EXAMPLES, log: () => {} });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
    page.setDefaultTimeout(90_000);
    await page.goto(real.url);
    await page.locator('.example').nth(1).click();
    await until(page, '#preview', (i) => !i.hidden && i.complete && i.naturalWidth > 0);
    await page.locator('#steps').fill('10');
    await page.click('#submit');
    await page.locator('#viewer[data-state="ready"]').waitFor({ timeout: 180_000 });
    assert.match(await page.locator('#status-line').innerText(), /^Done in/);
    assert.deepEqual(await page.locator('#stages li.done').evaluateAll((els) => els.map((e) => e.getAttribute('data-stage'))),
      ['preprocess', 'diffusion', 'reconstruct', 'render', 'filter', 'turntable', 'write']);
    const plyUrl = (await page.locator('#dl-ply').getAttribute('href'))!;
    const ply = Buffer.from(await (await fetch(`${real.url}${plyUrl}`)).arrayBuffer());
    const count = Number(/element vertex (\d+)/.exec(ply.subarray(0, 200).toString('latin1'))![1]);
    assert.equal(Number(await page.locator('#viewer').getAttribute('data-splats')), count);
    await page.waitForTimeout(1000);
    const shot = await page.locator('#viewer canvas').screenshot();
    const keep = process.env.FACELIFT_SCREENSHOT_DIR;
    if (keep) writeFileSync(join(keep, 'viewer-real.png'), shot);
    assert.ok(await nonWhiteFraction(shot) > 0.05, 'the viewer draws the Gaussians');
    await page.close();
  } finally {
    await real.close();
  }
});
