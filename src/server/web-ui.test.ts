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
import { DEMO_NOTICE } from '../pipeline/weights.ts';
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
  // Each "generation step" takes 150 ms, so that the progress and the time left can be watched.
  const runner = new SynthRunner({
    resolution: 96, frames: 8, spacing: 0.02, stepDelayMs: 150,
    about: { model: 'demo', notices: [DEMO_NOTICE] },
  });
  srv = await startServer({ runner, root: join(tmp, 'jobs'), port: 0, examplesDir: EXAMPLES, log: () => {} });
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
  assert.deepEqual(await rangeOf('#steps'), ['10', '100', '5', '20']);
  assert.equal(await page.locator('#seed').inputValue(), '4');
  assert.equal(await page.locator('.example').count(), 4);
  assert.equal(await page.locator('#submit').isDisabled(), true, 'nothing to submit before a photo is chosen');
  // The server runs the demo models: the page says so, with how to get FaceLift's.
  await page.locator('#model-notice:not([hidden])').waitFor();
  assert.match(await page.locator('#model-notice').innerText(), /^Running facelift-ts's small demo models.*facelift weights download/s);

  // Files that are not images are refused when picked, in the drop zone, before anything is uploaded.
  const uploads: string[] = [];
  page.on('request', (r) => { if (r.method() === 'POST') uploads.push(r.url()); });
  await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture at all') });
  await page.locator('#drop-msg:not([hidden])').waitFor();
  assert.match(await page.locator('#drop-msg').innerText(), /^"notes\.txt" is not a PNG, JPEG or WebP image/);
  await page.setInputFiles('#file', { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all') });
  await page.locator('#drop-msg:text-matches("broken")').waitFor();
  assert.match(await page.locator('#drop-msg').innerText(), /^"broken\.png" could not be opened as an image/);
  assert.equal(await page.locator('#submit').isDisabled(), true, 'a refused file cannot be submitted');
  assert.equal(await page.locator('#preview').isHidden(), true, 'no broken preview');
  assert.deepEqual(uploads, []);

  await page.setInputFiles('#file', { name: 'me.png', mimeType: 'image/png', buffer: await testPhoto('png', 240, 300) });
  await until(page, '#preview', (i) => !i.hidden && i.complete && i.naturalWidth === 240);
  assert.equal(await page.locator('#drop-msg').isHidden(), true);
  await page.locator('#seed').fill('21');
  await page.locator('#steps').fill('10');
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
  assert.match(await page.locator('#error').innerText(), /^No such job/);

  // The only console error expected: the unknown job's 404 above.
  assert.deepEqual(consoleErrors.filter((e) => !/status of 404/.test(e)), []);
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

/** What the page showed while a job ran: the status line and the time-left text, sampled every 100 ms. */
async function watchProgress(page: Page, timeoutMs = 120_000): Promise<Array<{ line: string; eta: string }>> {
  const seen: Array<{ line: string; eta: string }> = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const [line, eta] = await Promise.all([page.locator('#status-line').innerText(), page.locator('#eta').innerText()]);
    seen.push({ line, eta });
    if (/^(Done|Failed)/.test(line)) return seen;
    if (Date.now() > end) throw new Error(`the job did not end within ${timeoutMs} ms: ${JSON.stringify(seen.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Seconds in "~N s left" / "~N min left" texts. */
function secondsLeft(eta: string): number | null {
  const m = /^~(\d+) (s|min) left$/.exec(eta);
  return m ? Number(m[1]) * (m[2] === 'min' ? 60 : 1) : null;
}

/** The element's box lies within the viewport (its top edge at least, for tall elements). */
async function inView(page: Page, selector: string, whole: boolean): Promise<{ ok: boolean; box: string }> {
  const b = await page.locator(selector).boundingBox();
  const vp = page.viewportSize()!;
  const ok = b !== null && b.y >= -1 && (whole ? b.y + b.height <= vp.height + 1 : b.y < vp.height * 0.5);
  return { ok, box: JSON.stringify(b) };
}

for (const device of [
  { name: 'desktop', viewport: { width: 1280, height: 900 }, mobile: false },
  { name: 'phone', viewport: { width: 390, height: 844 }, mobile: true },
]) {
  test(`${device.name} ${device.viewport.width}×${device.viewport.height}: progress in view with steps and time left, results brought into view, the chosen example marked`, { skip, timeout: 240_000 }, async () => {
    const page = await browser.newPage({ viewport: device.viewport, isMobile: device.mobile, hasTouch: device.mobile });
    page.setDefaultTimeout(90_000);
    await page.goto(srv.url);
    await page.locator('.example').nth(2).click();
    await until(page, '#preview', (i) => !i.hidden && i.complete && i.naturalWidth > 0);
    const pressed = await page.locator('.example').evaluateAll((els) => els.map((e) => e.getAttribute('aria-pressed')));
    assert.deepEqual(pressed, ['false', 'false', 'true', 'false'], 'the chosen example is marked');
    await page.locator('#steps').fill('20');
    await page.click('#submit');
    await page.locator('#stages li').first().waitFor();
    // Wherever the page was scrolled, the live stages are on screen right after Generate.
    await page.waitForTimeout(300);
    const stagesSeen = await inView(page, '#stages', true);
    assert.ok(stagesSeen.ok, `the stage list is off screen after Generate: ${stagesSeen.box}`);

    const seen = await watchProgress(page);
    assert.match(seen.at(-1)!.line, /^Done in/);
    // The step counter counts the 20 steps asked for.
    const steps = seen.map((x) => /step (\d+)\/(\d+)$/.exec(x.line)).filter((m) => m !== null && m[0] && /Synth/.test(m.input));
    assert.ok(steps.length >= 5, JSON.stringify(seen.slice(0, 20)));
    assert.ok(steps.every((m) => m![2] === '20' && Number(m![1]) <= 20), JSON.stringify(steps.map((m) => m![0])));
    // A time left is shown while it runs and goes down.
    const left = seen.map((x) => secondsLeft(x.eta)).filter((v): v is number => v !== null);
    assert.ok(left.length >= 5, `time-left texts: ${JSON.stringify([...new Set(seen.map((x) => x.eta))])}`);
    // (The first figures can jump while the speed is being measured on a busy machine; from the peak on it counts down.)
    const peak = left.indexOf(Math.max(...left));
    const tail = left.slice(peak);
    const rises = tail.filter((v, i) => i > 0 && v > tail[i - 1]!).length;
    assert.ok(tail.length >= 3 && tail.at(-1)! < tail[0]! && rises <= 0.2 * tail.length, `time left ${JSON.stringify(left)}`);

    await page.locator('#viewer[data-state="ready"]').waitFor({ timeout: 120_000 });
    // The results are in view when the job ends (beside the controls on a desktop; scrolled to on a phone).
    const results = await inView(page, '#result-items', false);
    assert.ok(results.ok, `results not in view: ${results.box}`);
    if (device.mobile) {
      // Images and the turntable use the phone's width; the viewer is square, behind a tap-to-interact cover.
      const width = (sel: string) => page.locator(sel).evaluate((e) => (e as unknown as { clientWidth: number }).clientWidth);
      const full = await width('#result-items');
      for (const sel of ['#r-input', '#r-video', '#r-multiview']) assert.ok((await width(sel)) >= 0.95 * full, `${sel} is ${await width(sel)} of ${full} px`);
      const vb = (await page.locator('#viewer').boundingBox())!;
      assert.ok(Math.abs(vb.width - vb.height) <= 2, `viewer ${vb.width}×${vb.height}`);
      assert.match(await page.locator('#viewer-caption').innerText(), /pinch to zoom/);
      assert.doesNotMatch(await page.locator('#viewer-caption').innerText(), /scroll|right-drag|double-click/);
      const cover = page.locator('#viewer-touch');
      assert.match(await cover.innerText(), /Tap to interact/);
      await cover.tap();
      assert.equal(await cover.isHidden(), true, 'a tap hands the gestures to the viewer');
      await page.locator('h2').first().tap();
      assert.equal(await cover.isVisible(), true, 'touching the page elsewhere covers the viewer again');
    } else {
      assert.equal(await page.locator('#viewer-touch').isHidden(), true, 'no touch cover with a mouse');
    }
    const keep = process.env.FACELIFT_SCREENSHOT_DIR;
    if (keep) {
      await page.waitForTimeout(1500);
      await page.evaluate('window.scrollTo(0, 0)');
      writeFileSync(join(keep, `web-${device.name}.png`), await page.screenshot({ fullPage: true }));
    }
    await page.close();
  });
}

test('the viewer shows that it is loading, and its errors in its own box', { skip, timeout: 180_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.setDefaultTimeout(90_000);
  await page.goto(srv.url);
  await page.locator('.example').first().click();
  await until(page, '#preview', (i) => !i.hidden && i.complete && i.naturalWidth > 0);
  await page.locator('#steps').fill('10');
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  await page.route('**/viewer.ply', async (route) => { await held; await route.fulfill({ status: 404, body: 'gone' }); });
  await page.click('#submit');
  await page.locator('#viewer-msg.loading').waitFor();
  assert.match(await page.locator('#viewer-msg').innerText(), /Loading the 3D Gaussians/);
  release();
  await page.locator('#viewer-msg.error').waitFor();
  assert.match(await page.locator('#viewer-msg').innerText(), /^The 3D view could not be shown .*PLY download/);
  assert.equal(await page.locator('#error').isHidden(), true, 'the page-wide error box stays for the job');
  assert.match(await page.locator('#status-line').innerText(), /^Done in/);
  await page.close();
});
