/**
 * The four controls of FaceLift's gradio app (spec/pipeline.md §8) with the reference's ranges and defaults (steps:
 * the default sampler's), and the parser that turns submitted form fields into validated job settings. The browser
 * UI reads the same table from GET /api/config, so the ranges live in one place.
 */
import { DEFAULT_SCHEDULER, DEFAULT_STEPS, SCHEDULERS, type Scheduler } from '../diffusion/pipeline.ts';

export interface JobSettings {
  /** Face detection + crop ("Auto Cropping"). */
  autoCrop: boolean;
  /** Classifier-free guidance ("Guidance Scale"). */
  guidanceScale: number;
  /** Sampler steps ("Generation Steps"). */
  steps: number;
  /** Sampler seed ("Random Seed"); gradio hands a float, the app casts it to int. */
  seed: number;
  /** The sampler (not a gradio control; absent: `DEFAULT_SCHEDULER`). */
  scheduler?: Scheduler;
}

export interface RangeControl { label: string; min: number; max: number; step: number; default: number }

export const CONTROLS = {
  autoCrop: { label: 'Auto Cropping', default: true },
  guidanceScale: { label: 'Guidance Scale', min: 1, max: 10, step: 0.1, default: 3 } satisfies RangeControl,
  // The reference's default is 50 DDIM steps; the default sampler here reaches that quality in 20.
  steps: {
    label: 'Generation Steps', min: 10, max: 100, step: 5, default: DEFAULT_STEPS[DEFAULT_SCHEDULER],
  } satisfies RangeControl,
  seed: { label: 'Random Seed', min: 0, max: 2 ** 32 - 1, step: 1, default: 4 } satisfies RangeControl,
} as const;

export const DEFAULT_SETTINGS: JobSettings = {
  autoCrop: CONTROLS.autoCrop.default,
  guidanceScale: CONTROLS.guidanceScale.default,
  steps: CONTROLS.steps.default,
  seed: CONTROLS.seed.default,
};

/** A form field that cannot become a setting; the message is shown to the user as is. */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

function parseBool(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(s)) return true;
  if (['false', '0', 'off', 'no'].includes(s)) return false;
  throw new SettingsError(`${name} must be true or false, got "${v}"`);
}

function parseNumber(name: string, v: string, c: RangeControl, integer: boolean): number {
  const s = v.trim();
  const n = s === '' ? NaN : Number(s);
  if (!Number.isFinite(n)) throw new SettingsError(`${c.label} (${name}) must be a number, got "${v}"`);
  if (n < c.min || n > c.max) throw new SettingsError(`${c.label} (${name}) must be between ${c.min} and ${c.max}, got ${n}`);
  if (integer && !Number.isInteger(n)) throw new SettingsError(`${c.label} (${name}) must be a whole number, got ${n}`);
  return n;
}

/**
 * Form fields (absent ones take the defaults; absent steps, the chosen sampler's) → settings; unknown field names
 * are refused.
 */
export function parseSettings(fields: ReadonlyMap<string, string>): JobSettings {
  const out = { ...DEFAULT_SETTINGS };
  const scheduler = fields.get('scheduler');
  if (scheduler !== undefined && !fields.has('steps')) out.steps = DEFAULT_STEPS[parseScheduler(scheduler)];
  for (const [name, value] of fields) {
    switch (name) {
      case 'autoCrop': out.autoCrop = parseBool(name, value); break;
      case 'guidanceScale': out.guidanceScale = parseNumber(name, value, CONTROLS.guidanceScale, false); break;
      case 'steps': out.steps = parseNumber(name, value, CONTROLS.steps, true); break;
      // Like gradio's Number → int(): a seed typed as 4.0 is 4; 4.5 is refused rather than silently truncated.
      case 'seed': out.seed = parseNumber(name, value, CONTROLS.seed, true); break;
      case 'scheduler': out.scheduler = parseScheduler(value); break;
      default:
        throw new SettingsError(`unknown field "${name}"; expected image, autoCrop, guidanceScale, steps, seed, scheduler`);
    }
  }
  return out;
}

export function parseScheduler(v: string): Scheduler {
  const s = v.trim() as Scheduler;
  if (!SCHEDULERS.includes(s)) throw new SettingsError(`scheduler must be one of ${SCHEDULERS.join(', ')}, got "${v}"`);
  return s;
}
