import type { Command } from 'commander';

/** Each command module exports `register(program)`; add new ones here. */
export const commandModules: Array<() => Promise<{ register: (program: Command) => void }>> = [
  () => import('./ckpt.ts'),
  () => import('./weights.ts'),
  () => import('./models.ts'),
  () => import('./synth.ts'),
  () => import('./render.ts'),
  () => import('./infer.ts'),
  () => import('./reconstruct.ts'),
  () => import('./serve.ts'),
  () => import('./worker.ts'),
  () => import('./mouse.ts'),
  () => import('./train.ts'),
];
