/**
 * The model flags `facelift serve` and `facelift worker` share (--model, --weights, --prompt-embeds, --matting,
 * --matting-model, --detector, --threads), turned into the pipeline runner's options with paths made absolute
 * (the runner lives in a child process that may not share the working directory's meaning).
 */
import { Option } from 'commander';
import { resolve } from 'node:path';
import type { MattingChoice } from '../pipeline/models.ts';
import type { ModelChoice } from '../pipeline/weights.ts';
import type { DetectorChoice } from '../preprocess/index.ts';
import type { PipelineRunnerOptions } from '../server/pipeline-runner.ts';

export interface ModelFlags {
  weights?: string;
  model: ModelChoice;
  promptEmbeds?: string;
  matting?: MattingChoice;
  mattingModel?: string;
  detector: DetectorChoice;
  threads?: number;
  device: 'auto' | 'cpu' | 'cuda';
}

/** --model and --matting as `facelift infer` declares them. */
export function modelOption(): Option {
  return new Option('--model <which>', "FaceLift's models (official), facelift-ts's small demo models (demo), or auto: " +
    'official when present locally, else demo').choices(['auto', 'official', 'demo']).default('auto');
}

export function deviceOption(): Option {
  return new Option('--device <device>', "where the networks run: cuda (onnxruntime-node's CUDA provider), cpu, or " +
    'auto: CUDA when it is installed').choices(['auto', 'cpu', 'cuda']).default('auto');
}

export function mattingOption(): Option {
  return new Option('--matting <model>', 'background removal (default: modnet when cached or reachable, else selfie, ' +
    'the packaged MediaPipe selfie segmenter)').choices(['modnet', 'u2net', 'selfie', 'none']);
}

export function pipelineRunnerOptions(o: ModelFlags): PipelineRunnerOptions {
  return {
    ...(o.weights ? { weights: resolve(o.weights) } : {}),
    model: o.model,
    ...(o.promptEmbeds ? { promptEmbeds: resolve(o.promptEmbeds) } : {}),
    ...(o.matting ? { matting: o.matting } : {}),
    ...(o.mattingModel ? { mattingModel: resolve(o.mattingModel) } : {}),
    faceDetector: o.detector,
    device: o.device,
    ...(o.threads ? { threads: o.threads } : {}),
  };
}
