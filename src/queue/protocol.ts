/**
 * What travels through Redis between the machines that enqueue portraits (`facelift serve --redis`, `facelift infer
 * --redis`) and the workers (`facelift worker`): one small job record per portrait. Photos and results do not go
 * through Redis; they travel over HTTP between the worker and the enqueuer's file exchange (exchange.ts), with a
 * per-job token that only the job record carries.
 */
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/errors.ts';
import { SCHEDULERS, type Scheduler } from '../diffusion/pipeline.ts';
import type { JobSettings } from '../server/settings.ts';

/** BullMQ queue name (keys `bull:facelift-portraits:*`). */
export const QUEUE_NAME = 'facelift-portraits';

/** Post-processing of a job: the CLI's (`facelift infer`) or the gradio app's (`facelift serve`). */
export type Postprocess = { profile: 'infer' | 'gradio'; frames: number };

export interface RemoteJobData {
  /** 22 URL-safe characters; also the BullMQ job id. */
  id: string;
  /** Bearer token for this job's routes on the exchange (128 random bits). */
  token: string;
  /** Base URL of the exchange that holds the photo and takes the results. */
  exchange: string;
  settings: JobSettings;
  post: Postprocess;
  /** The photo's format, read from its bytes by the enqueuer. */
  format: 'png' | 'jpeg' | 'webp';
}

/** Job records stay small: Redis holds many of them. */
export const MAX_RECORD_BYTES = 64 * 1024;

/** Files a worker may send back (the result folder of one portrait). */
export const RESULT_NAMES = [
  'input.png', 'multiview.png', 'output.png', 'turntable.mp4', 'gaussians.ply', 'result.json', 'viewer.ply',
] as const;
/** Without these a result is not complete. */
export const REQUIRED_NAMES = ['input.png', 'multiview.png', 'output.png', 'turntable.mp4', 'gaussians.ply'] as const;

export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
export const ATTEMPT_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export const newToken = (): string => randomBytes(16).toString('base64url');

/** The record as BullMQ stores it, checked for size. */
export function encodeJob(d: RemoteJobData): RemoteJobData {
  const bytes = Buffer.byteLength(JSON.stringify(d));
  if (bytes > MAX_RECORD_BYTES) throw new Error(`job record of ${bytes} bytes is over the ${MAX_RECORD_BYTES}-byte limit`);
  return d;
}

/** A job record read back from Redis: anything malformed is refused (a worker trusts nothing it did not check). */
export function decodeJob(raw: unknown): RemoteJobData {
  const bad = (what: string) => new UserError(`malformed job record: ${what}`);
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const r = raw as Record<string, unknown>;
  if (typeof r.id !== 'string' || !ID_PATTERN.test(r.id)) throw bad('id');
  if (typeof r.token !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(r.token)) throw bad('token');
  if (typeof r.exchange !== 'string' || !/^https?:\/\/[^\s/]+$/.test(r.exchange.replace(/\/$/, ''))) throw bad('exchange');
  if (r.format !== 'png' && r.format !== 'jpeg' && r.format !== 'webp') throw bad('format');
  const s = r.settings as Record<string, unknown> | undefined;
  if (!s || typeof s.autoCrop !== 'boolean' || typeof s.guidanceScale !== 'number' || !Number.isInteger(s.steps)
    || !Number.isInteger(s.seed) || (s.scheduler !== undefined && !SCHEDULERS.includes(s.scheduler as Scheduler))) {
    throw bad('settings');
  }
  const p = r.post as Record<string, unknown> | undefined;
  if (!p || (p.profile !== 'infer' && p.profile !== 'gradio') || !Number.isInteger(p.frames) || (p.frames as number) < 1) {
    throw bad('post-processing');
  }
  return {
    id: r.id, token: r.token, exchange: r.exchange.replace(/\/$/, ''), format: r.format,
    settings: {
      autoCrop: s.autoCrop, guidanceScale: s.guidanceScale, steps: s.steps as number, seed: s.seed as number,
      ...(s.scheduler !== undefined ? { scheduler: s.scheduler as Scheduler } : {}),
    },
    post: { profile: p.profile, frames: p.frames as number },
  };
}
