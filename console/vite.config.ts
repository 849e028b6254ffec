// The console's build: `npm run build:console` writes console/dist/, which `hueguard serve` serves at `/`.
// `npm run dev:console` serves the sources with the API proxied to a controller on 127.0.0.1:8470.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic' } },
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets', target: 'es2022', reportCompressedSize: false },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8470', changeOrigin: false } } },
});
