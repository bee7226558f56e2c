import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

/// Ships the background-segmentation model and its WebAssembly with the app,
/// so the page never fetches them from a CDN.
function mediapipeAssets(): Plugin {
  return {
    name: "conclave-mediapipe-assets",
    apply: "build",
    closeBundle() {
      const from = resolve(__dirname, "node_modules/@mediapipe/selfie_segmentation");
      const to = resolve(__dirname, "dist/mediapipe");
      mkdirSync(to, { recursive: true });
      cpSync(from, to, { recursive: true, filter: (p) => !p.endsWith(".md") && !p.endsWith(".d.ts") });
    },
  };
}

/// `CONCLAVE_WEB_TEST_HOOKS=1` builds the app with `window.__conclave` (its
/// state, WebRTC stats and E2EE status for the browser tests) and leaves a
/// `TEST-HOOKS` mark in `dist`, which a release build of the server refuses
/// to embed. Any other build has no trace of the hooks.
const testHooks = process.env.CONCLAVE_WEB_TEST_HOOKS === "1";

function testHooksMark(): Plugin {
  return {
    name: "conclave-test-hooks-mark",
    apply: "build",
    closeBundle() {
      if (testHooks) writeFileSync(resolve(__dirname, "dist/TEST-HOOKS"), "built with CONCLAVE_WEB_TEST_HOOKS=1\n");
    },
  };
}

/// Writes a Brotli (`.br`) and a gzip (`.gz`) copy beside every file of
/// `dist` that compresses, so the server sends each browser the smallest it
/// takes without compressing anything per request (`conclave-server`'s
/// `web.rs`). Large files get a faster Brotli level: the build stays quick.
function precompress(): Plugin {
  const compressible = /\.(js|mjs|css|html|wasm|json|svg|txt|binarypb|tflite|data)$/;
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
  return {
    name: "conclave-precompress",
    apply: "build",
    closeBundle() {
      for (const path of walk(resolve(__dirname, "dist"))) {
        if (!compressible.test(path)) continue;
        const bytes = readFileSync(path);
        if (bytes.length < 1024) continue;
        const quality = bytes.length > 1 << 20 ? 7 : 11;
        const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
        const gz = gzipSync(bytes, { level: 9 });
        if (br.length < bytes.length * 0.9) writeFileSync(`${path}.br`, br);
        if (gz.length < bytes.length * 0.9) writeFileSync(`${path}.gz`, gz);
      }
    },
  };
}

export default defineConfig({
  // Precompression last: it reads what the others wrote.
  plugins: [react(), mediapipeAssets(), testHooksMark(), precompress()],
  define: { __TEST_HOOKS__: JSON.stringify(testHooks) },
  // The E2EE worker is an ES module (it imports the wasm module's bindings).
  worker: { format: "es" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    rollupOptions: {
      // The push service worker is its own entry, at the root (its scope
      // is the path it is served from) under a name that does not change.
      input: { main: resolve(__dirname, "index.html"), "push-worker": resolve(__dirname, "src/push-worker.ts") },
      output: { entryFileNames: (chunk) => (chunk.name === "push-worker" ? "push-worker.js" : "assets/[name]-[hash].js") },
    },
  },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } } },
});
