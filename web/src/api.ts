/** The server's JSON API, typed with the server's own types (type-only imports: nothing of the server is bundled). */
import type { JobView } from '../../src/server/jobs.ts';
import type { CONTROLS } from '../../src/server/settings.ts';

export type { JobView };

export interface Config {
  controls: typeof CONTROLS;
  maxUploadBytes: number;
  acceptedFormats: string[];
  queue: { capacity: number; waiting: number };
  models: {
    state: 'loading' | 'ready' | 'failed';
    error?: string;
    progress?: { stage: string; step: number; total: number; detail?: string };
    /** Once ready: whose models serve the jobs, and notes about what was chosen. */
    model?: 'official' | 'demo';
    notices?: string[];
  };
  examples: Array<{ name: string; url: string }>;
}

/** The server's `{ error }` message, or a plain description of the HTTP failure. */
async function errorOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: string };
    if (body.error) return body.error;
  } catch {
    // not JSON: fall through
  }
  return `the server answered ${res.status} ${res.statusText}`;
}

export async function getConfig(): Promise<Config> {
  const res = await fetch('/api/config');
  if (!res.ok) throw new Error(await errorOf(res));
  return (await res.json()) as Config;
}

export async function submitJob(image: Blob, filename: string, settings: Record<string, string>): Promise<JobView> {
  const body = new FormData();
  for (const [k, v] of Object.entries(settings)) body.append(k, v);
  body.append('image', image, filename);
  let res: Response;
  try {
    res = await fetch('/api/jobs', { method: 'POST', body });
  } catch {
    throw new Error('could not reach the server; is `facelift serve` still running?');
  }
  if (!res.ok) throw new Error(await errorOf(res));
  return (await res.json()) as JobView;
}

/** Follows a job over server-sent events until it is done or failed. */
export function watchJob(id: string, onUpdate: (job: JobView) => void): Promise<JobView> {
  return new Promise((resolve, reject) => {
    const es = new EventSource(`/api/jobs/${id}/events`);
    let last: JobView | undefined;
    es.addEventListener('job', (ev) => {
      last = JSON.parse((ev as MessageEvent<string>).data) as JobView;
      onUpdate(last);
      if (last.status === 'done' || last.status === 'failed') {
        es.close();
        resolve(last);
      }
    });
    es.onerror = () => {
      // While the connection is being re-established (EventSource retries by itself) there is nothing to do once
      // the job is known to exist; otherwise ask the status route why the stream failed.
      if (es.readyState === EventSource.CONNECTING && last) return;
      fetch(`/api/jobs/${id}`).then(async (r) => {
        if (!r.ok) {
          es.close();
          reject(new Error(await errorOf(r)));
        } else if (es.readyState === EventSource.CLOSED) {
          const job = (await r.json()) as JobView;
          onUpdate(job);
          if (job.status === 'done' || job.status === 'failed') resolve(job);
          else reject(new Error('lost the progress stream; reload the page to follow the job again'));
        }
      }, () => {
        if (es.readyState === EventSource.CLOSED) reject(new Error('lost the connection to the server; is `facelift serve` still running?'));
      });
    };
  });
}
