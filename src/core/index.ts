/** The compute core: graph IR, ops, lowering to ONNX, onnxruntime sessions, autodiff, optimizers. */
export * from './graph.ts';
export * from './ops/elementwise.ts';
export * from './ops/shape.ts';
export * from './ops/nn.ts';
export * from './attention.ts';
export * from './lower.ts';
export * from './session.ts';
export * from './autodiff.ts';
export * from './optim.ts';
export * from './flash-attention.ts';
export * from './recompute.ts';
export * from './quantize.ts';
