/** PyTorch-style dotted parameter names: `join('blocks.0', 'norm1')` → 'blocks.0.norm1'. */
export const join = (prefix: string, name: string): string => (prefix ? `${prefix}.${name}` : name);
