/**
 * The model flags `facelift serve` and `facelift worker` share (--weights, --prompt-embeds, --matting,
 * --matting-model, --detector, --threads), turned into the pipeline runner's options with paths made absolute
 * (the runner lives in a child process that may not share the working directory's meaning).
 */
import { resolve } from 'node:path';
import type { MattingChoice } from '../pipeline/models.ts';
import type { DetectorChoice } from '../preprocess/index.ts';
import type { PipelineRunnerOptions } from '../server/pipeline-runner.ts';

export interface ModelFlags {
  weights?: string;
  promptEmbeds?: string;
  matting: MattingChoice;
  mattingModel?: string;
  detector: DetectorChoice;
  threads?: number;
}

export function pipelineRunnerOptions(o: ModelFlags): PipelineRunnerOptions {
  return {
    ...(o.weights ? { weights: resolve(o.weights) } : {}),
    ...(o.promptEmbeds ? { promptEmbeds: resolve(o.promptEmbeds) } : {}),
    matting: o.matting,
    ...(o.mattingModel ? { mattingModel: resolve(o.mattingModel) } : {}),
    faceDetector: o.detector,
    ...(o.threads ? { threads: o.threads } : {}),
  };
}
