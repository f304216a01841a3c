/**
 * The page: pick or drop a photo (or click an example), set the four controls (ranges and defaults from the
 * server's /api/config, i.e. FaceLift's gradio app), submit, follow the job's stages live with the time left, then
 * show every result with an interactive splat viewer and downloads. Progress and results appear where the eye is:
 * the right-hand column on a wide screen; on a phone the page scrolls to them.
 */
import './style.css';
import { formatRemaining } from '../../src/pipeline/estimate.ts';
import { getConfig, submitJob, watchJob, type Config, type JobView } from './api.ts';
import { SplatViewer } from './viewer.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const STAGE_LABELS: Record<string, string> = {
  preprocess: 'Preprocessing (matting, face crop)',
  diffusion: 'Multi-view diffusion',
  reconstruct: 'GS-LRM reconstruction',
  render: 'Rendering the 6 views',
  filter: 'Filtering Gaussians',
  turntable: 'Turntable video',
  write: 'Writing files',
  synthesize: 'Synthesizing',
};

let config: Config;
let photo: { blob: Blob; name: string } | null = null;
let viewer: SplatViewer | null = null;
let busy = false;
/** The latest job view and when it arrived: the clock and the estimate tick on between server updates. */
let latest: { job: JobView; at: number } | null = null;
/** A phone-sized layout: one column, so progress and results lie below the controls. */
const narrow = () => window.matchMedia('(max-width: 900px)').matches;
const touch = () => window.matchMedia('(pointer: coarse)').matches;

/** Messages start with a capital letter, whoever wrote them. */
const sentence = (m: string) => m.charAt(0).toUpperCase() + m.slice(1);

function showError(message: string | null): void {
  const el = $('error');
  el.hidden = !message;
  el.textContent = message ? sentence(message) : '';
}

/** A message in the drop zone about the file just picked (null clears it). */
function showPickMessage(message: string | null): void {
  const el = $('drop-msg');
  el.hidden = !message;
  el.textContent = message ?? '';
  $('drop').classList.toggle('refused', Boolean(message));
}

const MIME: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Why a picked file cannot be a portrait, or null: its type, its size, and whether the browser can decode it. */
async function refusal(blob: Blob, name: string): Promise<string | null> {
  const accepted = config.acceptedFormats.map((f) => MIME[f] ?? `image/${f}`);
  const byName = /\.(png|jpe?g|webp)$/i.test(name);
  if (!(accepted.includes(blob.type) || (blob.type === '' && byName))) {
    return `"${name}" is not a PNG, JPEG or WebP image. Choose a photo in one of those formats.`;
  }
  if (blob.size > config.maxUploadBytes) {
    const mb = (n: number, digits: number) => (n / 2 ** 20).toFixed(digits);
    return `That photo is ${mb(blob.size, 1)} MB; the limit is ${mb(config.maxUploadBytes, 0)} MB. Use a smaller photo.`;
  }
  try {
    (await createImageBitmap(blob)).close();
  } catch {
    const kind = blob.type.slice(6).toUpperCase() || 'picture';
    return `"${name}" could not be opened as an image (it may be damaged or not really a ${kind}). Choose another photo.`;
  }
  return null;
}

function clearPhoto(): void {
  photo = null;
  const img = $<HTMLImageElement>('preview');
  if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
  img.removeAttribute('src');
  img.hidden = true;
  $('drop-hint').hidden = false;
}

async function setPhoto(blob: Blob, name: string, example?: HTMLElement): Promise<void> {
  for (const b of document.querySelectorAll('.example')) b.setAttribute('aria-pressed', String(b === example));
  const why = await refusal(blob, name);
  if (why) {
    clearPhoto();
    for (const b of document.querySelectorAll('.example')) b.setAttribute('aria-pressed', 'false');
    showPickMessage(why);
    updateSubmit();
    return;
  }
  showPickMessage(null);
  showError(null);
  photo = { blob, name };
  const img = $<HTMLImageElement>('preview');
  if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  $('drop-hint').hidden = true;
  updateSubmit();
}

function updateSubmit(): void {
  $<HTMLButtonElement>('submit').disabled = busy || !photo || config.models.state === 'failed';
}

function setupControls(): void {
  const c = config.controls;
  $<HTMLInputElement>('autoCrop').checked = c.autoCrop.default;
  for (const key of ['guidanceScale', 'steps'] as const) {
    const input = $<HTMLInputElement>(key);
    Object.assign(input, { min: String(c[key].min), max: String(c[key].max), step: String(c[key].step), value: String(c[key].default) });
    const out = $<HTMLOutputElement>(`${key}-out`);
    const show = () => { out.textContent = key === 'guidanceScale' ? Number(input.value).toFixed(1) : input.value; };
    input.addEventListener('input', show);
    show();
  }
  const seed = $<HTMLInputElement>('seed');
  Object.assign(seed, { min: String(c.seed.min), max: String(c.seed.max), step: '1', value: String(c.seed.default) });
}

function setupPicker(): void {
  const drop = $<HTMLLabelElement>('drop');
  const file = $<HTMLInputElement>('file');
  file.addEventListener('change', () => { const f = file.files?.[0]; if (f) void setPhoto(f, f.name); });
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) void setPhoto(f, f.name);
  });
  const box = $('examples');
  $('examples-box').hidden = config.examples.length === 0;
  for (const ex of config.examples) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'example';
    b.title = ex.name;
    b.setAttribute('aria-pressed', 'false');
    b.innerHTML = `<img alt="example ${ex.name}" loading="lazy">`;
    (b.firstChild as HTMLImageElement).src = ex.url;
    b.addEventListener('click', async () => {
      const res = await fetch(ex.url);
      if (res.ok) await setPhoto(await res.blob(), ex.name, b);
      else showError(`Could not load the example ${ex.name}.`);
    });
    box.append(b);
  }
}

/** "3:07", "1:02:05". */
function clock(ms: number): string {
  const t = Math.max(0, Math.floor(ms / 1000));
  const [h, m, s] = [Math.floor(t / 3600), Math.floor(t / 60) % 60, t % 60];
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return `${h ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

/** Elapsed time and time left, ticking between server updates. */
function renderTiming(): void {
  const eta = $('eta'), elapsed = $('elapsed');
  const job = latest?.job;
  if (!latest || !job || job.status !== 'running') {
    $('timing').hidden = true;
    return;
  }
  $('timing').hidden = false;
  const since = performance.now() - latest.at;
  elapsed.textContent = `${clock((job.elapsedMs ?? 0) + since)} elapsed`;
  eta.textContent = job.remainingMs === null || job.remainingMs === undefined
    ? 'Estimating the time left…'
    : formatRemaining(Math.max(0, job.remainingMs - since));
}

function renderStatus(job: JobView): void {
  latest = { job, at: performance.now() };
  $('results').hidden = false;
  $('status').hidden = false;
  const line = $('status-line');
  const running = job.stages.find((s) => s.state === 'running');
  if (job.status === 'queued') line.textContent = job.position === 0 ? 'Waiting: next in line…' : `Waiting in the queue: ${job.position} job(s) ahead…`;
  else if (job.status === 'running') {
    const label = running ? STAGE_LABELS[running.name] ?? running.name : 'Starting';
    line.textContent = running && running.total > 1
      ? `${label} · step ${Math.min(running.step, running.total)}/${running.total}`
      : `${label}…`;
  } else if (job.status === 'done') line.textContent = `Done in ${secs(job)}.`;
  else line.textContent = 'Failed.';
  renderTiming();
  $<HTMLProgressElement>('overall').value = job.progress;
  const list = $('stages');
  list.replaceChildren(...job.stages.map((s) => {
    const li = document.createElement('li');
    li.className = s.state;
    li.dataset.stage = s.name;
    const pct = s.state === 'done' ? 100 : Math.round((100 * s.step) / s.total);
    const label = STAGE_LABELS[s.name] ?? s.name;
    const extra = s.state === 'running' && s.total > 1 ? ` ${s.step}/${s.total}` : s.state === 'done' && s.ms !== undefined ? ` ${(s.ms / 1000).toFixed(1)} s` : '';
    li.innerHTML = '<span class="name"></span><span class="bar"><span></span></span>';
    (li.querySelector('.name') as HTMLElement).textContent = label + extra;
    (li.querySelector('.bar > span') as HTMLElement).style.width = `${pct}%`;
    return li;
  }));
}

function secs(job: JobView): string {
  if (!job.startedAt || !job.finishedAt) return '';
  return `${((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000).toFixed(1)} s`;
}

async function showResults(job: JobView): Promise<void> {
  const f = job.files!;
  $('results').hidden = false;
  $('result-items').hidden = false;
  if (narrow()) $('result-items').scrollIntoView({ block: 'start' });
  $<HTMLImageElement>('r-input').src = f['input.png'];
  $<HTMLImageElement>('r-multiview').src = f['multiview.png'];
  $<HTMLImageElement>('r-output').src = f['output.png'];
  $<HTMLVideoElement>('r-video').src = f['turntable.mp4'];
  $<HTMLAnchorElement>('dl-ply').href = `${f['gaussians.ply']}?download`;
  $<HTMLAnchorElement>('dl-mp4').href = `${f['turntable.mp4']}?download`;
  $<HTMLAnchorElement>('dl-zip').href = job.zip!;
  const msg = $('viewer-msg');
  msg.hidden = false;
  msg.className = 'loading';
  msg.textContent = 'Loading the 3D Gaussians…';
  try {
    viewer ??= new SplatViewer($('viewer'));
    await viewer.load(job.viewer!);
    msg.hidden = true;
  } catch (e) {
    msg.className = 'error';
    msg.textContent = `The 3D view could not be shown (${(e as Error).message}). The PLY download below still works.`;
  }
}

/**
 * On a touch screen the viewer would take every swipe that starts on it, so a page taller than the screen could not
 * be scrolled past it: it stays behind a "tap to interact" cover until tapped, and covers up again when the page
 * is touched elsewhere.
 */
function setupViewerTouch(): void {
  if (!touch()) return;
  $('viewer-caption').textContent =
    '3D Gaussians — tap to start, then drag to orbit, pinch to zoom, drag with two fingers to pan, double-tap to reset';
  const cover = $<HTMLButtonElement>('viewer-touch');
  cover.hidden = false;
  cover.addEventListener('click', () => { cover.hidden = true; });
  document.addEventListener('pointerdown', (e) => {
    if (!$('viewer-box').contains(e.target as Node)) cover.hidden = false;
  });
}

async function follow(id: string): Promise<void> {
  const final = await watchJob(id, renderStatus);
  if (final.status === 'failed') {
    showError(final.error ?? 'The job failed.');
    if (narrow()) $('error').scrollIntoView({ block: 'center' });
  } else await showResults(final);
}

async function onSubmit(ev: Event): Promise<void> {
  ev.preventDefault();
  if (!photo || busy) return;
  busy = true;
  updateSubmit();
  showError(null);
  $('result-items').hidden = true;
  latest = null;
  try {
    const settings = {
      autoCrop: String($<HTMLInputElement>('autoCrop').checked),
      guidanceScale: $<HTMLInputElement>('guidanceScale').value,
      steps: $<HTMLInputElement>('steps').value,
      seed: String(Math.trunc(Number($<HTMLInputElement>('seed').value || config.controls.seed.default))),
    };
    const job = await submitJob(photo.blob, photo.name, settings);
    // The job's id in the address: a reload (or the link) follows the same job and shows its results.
    history.replaceState(null, '', `#${job.id}`);
    renderStatus(job);
    if (narrow()) $('status').scrollIntoView({ block: 'start' });
    await follow(job.id);
  } catch (e) {
    showError((e as Error).message);
  } finally {
    busy = false;
    updateSubmit();
  }
}

/** Says plainly when the server runs the small demo models (and anything else chosen for the user). */
function showModelNotices(model: 'official' | 'demo' | undefined, notices: readonly string[]): void {
  const box = $('model-notice');
  box.replaceChildren(...notices.map((n) => {
    const p = document.createElement('p');
    p.textContent = n.charAt(0).toUpperCase() + n.slice(1) + (/[.)]$/.test(n) ? '' : '.');
    return p;
  }));
  box.hidden = notices.length === 0;
  box.dataset.model = model ?? '';
}

async function pollModels(): Promise<void> {
  const note = $('models-state');
  for (;;) {
    if (config.models.state === 'ready') {
      note.textContent = '';
      showModelNotices(config.models.model, config.models.notices ?? []);
      break;
    }
    if (config.models.state === 'failed') {
      note.textContent = '';
      showError(`The server cannot run jobs: the models could not be loaded (${config.models.error}).`);
      break;
    }
    const p = config.models.progress;
    const what = !p ? '' : p.stage === 'download'
      ? ` (downloading: ${(p.step / 2 ** 30).toFixed(2)} of ${(p.total / 2 ** 30).toFixed(2)} GB${p.detail ? `, ${p.detail}` : ''})`
      : ` (${p.detail ?? p.stage}, ${p.step}/${p.total})`;
    note.textContent = `The models are still loading${what}; you can submit now and the job will wait for them.`;
    await new Promise((r) => setTimeout(r, 2000));
    try { config = { ...config, models: (await getConfig()).models }; } catch { /* keep trying */ }
  }
  updateSubmit();
}

async function main(): Promise<void> {
  try {
    config = await getConfig();
  } catch (e) {
    showError(`Could not reach the server: ${(e as Error).message}`);
    return;
  }
  setupControls();
  setupPicker();
  setupViewerTouch();
  setInterval(renderTiming, 1000);
  $('controls').addEventListener('submit', (e) => void onSubmit(e));
  updateSubmit();
  void pollModels();
  const id = location.hash.slice(1);
  if (/^[A-Za-z0-9_-]{22}$/.test(id)) {
    busy = true;
    updateSubmit();
    try {
      await follow(id);
    } catch (e) {
      showError(`${(e as Error).message}`);
      history.replaceState(null, '', location.pathname);
    } finally {
      busy = false;
      updateSubmit();
    }
  }
}

void main();
