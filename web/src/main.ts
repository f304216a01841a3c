/**
 * The page: pick or drop a photo (or click an example), set the four controls (ranges and defaults from the
 * server's /api/config, i.e. FaceLift's gradio app), submit, follow the job's stages live, then show every result
 * with an interactive splat viewer and downloads.
 */
import './style.css';
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

function showError(message: string | null): void {
  const el = $('error');
  el.hidden = !message;
  el.textContent = message ?? '';
}

function setPhoto(blob: Blob, name: string): void {
  if (blob.size > config.maxUploadBytes) {
    showError(`That photo is ${(blob.size / 2 ** 20).toFixed(1)} MB; the limit is ${(config.maxUploadBytes / 2 ** 20).toFixed(0)} MB. Use a smaller photo.`);
    return;
  }
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
  file.addEventListener('change', () => { const f = file.files?.[0]; if (f) setPhoto(f, f.name); });
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) setPhoto(f, f.name);
  });
  const box = $('examples');
  $('examples-box').hidden = config.examples.length === 0;
  for (const ex of config.examples) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'example';
    b.title = ex.name;
    b.innerHTML = `<img alt="example ${ex.name}" loading="lazy">`;
    (b.firstChild as HTMLImageElement).src = ex.url;
    b.addEventListener('click', async () => {
      const res = await fetch(ex.url);
      if (res.ok) setPhoto(await res.blob(), ex.name);
      else showError(`could not load the example ${ex.name}`);
    });
    box.append(b);
  }
}

function renderStatus(job: JobView): void {
  $('status').hidden = false;
  const line = $('status-line');
  if (job.status === 'queued') line.textContent = job.position === 0 ? 'Waiting: next in line…' : `Waiting in the queue: ${job.position} job(s) ahead…`;
  else if (job.status === 'running') line.textContent = 'Working…';
  else if (job.status === 'done') line.textContent = `Done in ${secs(job)}.`;
  else line.textContent = 'Failed.';
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
  $<HTMLImageElement>('r-input').src = f['input.png'];
  $<HTMLImageElement>('r-multiview').src = f['multiview.png'];
  $<HTMLImageElement>('r-output').src = f['output.png'];
  $<HTMLVideoElement>('r-video').src = f['turntable.mp4'];
  $<HTMLAnchorElement>('dl-ply').href = `${f['gaussians.ply']}?download`;
  $<HTMLAnchorElement>('dl-mp4').href = `${f['turntable.mp4']}?download`;
  $<HTMLAnchorElement>('dl-zip').href = job.zip!;
  try {
    viewer ??= new SplatViewer($('viewer'));
    await viewer.load(job.viewer!);
  } catch (e) {
    showError(`The 3D viewer could not show the result (${(e as Error).message}); the PLY download still works.`);
  }
}

async function follow(id: string): Promise<void> {
  const final = await watchJob(id, renderStatus);
  if (final.status === 'failed') showError(final.error ?? 'The job failed.');
  else await showResults(final);
}

async function onSubmit(ev: Event): Promise<void> {
  ev.preventDefault();
  if (!photo || busy) return;
  busy = true;
  updateSubmit();
  showError(null);
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
    await follow(job.id);
  } catch (e) {
    showError((e as Error).message);
  } finally {
    busy = false;
    updateSubmit();
  }
}

async function pollModels(): Promise<void> {
  const note = $('models-state');
  for (;;) {
    if (config.models.state === 'ready') { note.textContent = ''; break; }
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
