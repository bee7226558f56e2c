import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

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

export default defineConfig({
  plugins: [react(), mediapipeAssets(), testHooksMark()],
  define: { __TEST_HOOKS__: JSON.stringify(testHooks) },
  // The E2EE worker is an ES module (it imports the wasm module's bindings).
  worker: { format: "es" },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, assetsInlineLimit: 0 },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } } },
});
