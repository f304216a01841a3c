import type { Command } from 'commander';
import { openWeights, totalParams } from '../../io/weights.ts';
import type { DType } from '../../io/dtypes.ts';

export interface CkptListing {
  tensors: Array<{ name: string; dtype: DType; shape: number[] }>;
  total_params: number;
}

/** Every tensor's name, dtype and shape in a .pt / .safetensors / shard index / diffusers folder. */
export async function inspectCheckpoint(path: string): Promise<CkptListing> {
  const src = await openWeights(path);
  try {
    return {
      tensors: src.keys().map((name) => ({ name, ...src.info(name) })),
      total_params: totalParams(src),
    };
  } finally {
    await src.close();
  }
}

export function formatListing(l: CkptListing): string {
  const width = Math.min(80, Math.max(4, ...l.tensors.map((t) => t.name.length)));
  const lines = l.tensors.map((t) => `${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(', ')}]`);
  lines.push(`${l.tensors.length} tensors, total parameters: ${l.total_params.toLocaleString('en-US')} (${l.total_params})`);
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  const ckpt = program.command('ckpt').description('inspect checkpoints and weight files');
  ckpt.command('inspect')
    .argument('<file-or-dir>', '.pt/.pth/.bin, .safetensors, *.index.json, or a diffusers component/pipeline folder')
    .option('--json', 'print one JSON object {"tensors":[{"name","dtype","shape"}],"total_params":N}')
    .description("list every tensor's name, dtype and shape, and the total parameter count")
    .action(async (path: string, opts: { json?: boolean }) => {
      const listing = await inspectCheckpoint(path);
      process.stdout.write(opts.json ? JSON.stringify(listing) + '\n' : formatListing(listing));
    });
}
