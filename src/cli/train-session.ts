/**
 * What every `facelift train …` command does around its trainer: SIGINT/SIGTERM ask for a checkpoint and a clean
 * stop after the current pass (a second signal quits at once), and a progress bar on stderr when it is a terminal
 * and --json is off.
 */
import cliProgress from 'cli-progress';

export interface StopOnSignal {
  /** True once a signal asked the run to stop. */
  readonly requested: () => boolean;
  /** Removes the signal handlers. */
  dispose(): void;
}

export function stopOnSignal(): StopOnSignal {
  let requested = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (requested) process.exit(130);
    requested = true;
    process.stderr.write(`\n${sig}: finishing this pass, then writing a checkpoint (send again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => requested,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A cli-progress bar with this format on stderr, or null for --json or a non-terminal stderr. */
export function trainBar(format: string, json: boolean | undefined): cliProgress.SingleBar | null {
  if (json || !process.stderr.isTTY) return null;
  return new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
}

/** The flags every train command hands its trainer alike (config, --set, --resume, --stop-after-minutes, --threads). */
export interface RunFlags {
  config: string;
  set: string[];
  resume?: boolean;
  stopAfterMinutes?: number;
  threads?: number;
}

export function runOptions(o: RunFlags): {
  config: string; sets: string[]; resume?: boolean; stopAfterMinutes?: number; threads?: number;
} {
  return {
    config: o.config,
    sets: o.set,
    ...(o.resume ? { resume: true } : {}),
    ...(o.stopAfterMinutes !== undefined ? { stopAfterMinutes: o.stopAfterMinutes } : {}),
    ...(o.threads ? { threads: o.threads } : {}),
  };
}
