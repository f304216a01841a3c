import { defineConfig } from 'vite';

// The UI is built into web/dist and served by `facelift serve`; nothing is fetched from a CDN at run time.
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  base: '/',
  // `npx vite web` for UI work: the page hot-reloads, the API comes from a running `facelift serve`.
  server: { proxy: { '/api': 'http://127.0.0.1:7860' } },
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
