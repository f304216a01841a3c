import { defineConfig } from 'vite';

// The UI is built into web/dist and served by `facelift serve`; nothing is fetched from a CDN at run time.
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // three + Spark (its wasm is inlined) are one large chunk by nature.
    chunkSizeWarningLimit: 4096,
  },
});
