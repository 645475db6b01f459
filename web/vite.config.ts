import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The build goes into the Python package, which serves it at `/`.
export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: '../src/durachat/static',
    emptyOutDir: true,
    assetsDir: 'assets',
    // No inline scripts or data: URLs for scripts, so a strict CSP is possible.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:5787',
      '/ws': { target: 'ws://127.0.0.1:5787', ws: true },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
