/** Layers on the compute core, named like their PyTorch counterparts so state-dict keys map directly. */
export * from './names.ts';
export * from './linear.ts';
export * from './norm.ts';
export * from './conv.ts';
export * from './mlp.ts';
export * from './attention.ts';
export * from './upsample.ts';
