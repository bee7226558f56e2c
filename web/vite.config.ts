import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";
import { cpSync, mkdirSync } from "node:fs";
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

export default defineConfig({
  plugins: [react(), mediapipeAssets()],
  // The E2EE worker is an ES module (it imports the wasm module's bindings).
  worker: { format: "es" },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, assetsInlineLimit: 0 },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } } },
});
