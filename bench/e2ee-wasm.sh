#!/usr/bin/env bash
# SFrame throughput of the browser's E2EE module (wasm) beside the native
# build, measured in one run on one core each, AES-128-GCM:
#   bench/e2ee-wasm.sh
# Builds the module (`cargo xtask web`), runs the native throughput bench
# and `bench/e2ee-wasm.mjs` in Node, and writes the `sframe-wasm` section of
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/conclave-target}"

cargo xtask web >/dev/null
native=$(taskset -c 0 cargo bench --quiet -p conclave-e2ee --bench throughput 2>/dev/null | grep 'Aes128GcmSha256_128')
wasm=$(taskset -c 0 node bench/e2ee-wasm.mjs web/src/e2ee/pkg)

table=$(python3 - "$native" "$wasm" <<'PY'
import json, sys
native = {}
for line in sys.argv[1].splitlines():
    cells = [c.strip() for c in line.strip("|").split("|")]
    native[cells[0]] = (float(cells[2]), float(cells[3]))
print("| frame | native encrypt GB/s | native decrypt GB/s | wasm encrypt GB/s | wasm decrypt GB/s | wasm ÷ native (encrypt) |")
print("|---|---|---|---|---|---|")
for line in sys.argv[2].splitlines():
    w = json.loads(line)
    n = native[w["frame"]]
    print(f"| {w['frame']} | {n[0]:.2f} | {n[1]:.2f} | {w['encrypt_gbps']:.3f} | {w['decrypt_gbps']:.3f} | {w['encrypt_gbps'] / n[0]:.3f} |")
PY
)

write_section sframe-wasm "<!-- sframe-wasm:start -->
## SFrame in the browser's module (wasm) beside native

Measured $(date +%F) on this machine by \`bench/e2ee-wasm.sh\`: the same SFrame code (AES-128-GCM,
SHA-256, 16-byte tag), natively (\`cargo bench -p conclave-e2ee --bench throughput\`) and as the
browser's wasm module in Node's V8 (\`bench/e2ee-wasm.mjs\`, through the API the media worker uses:
two devices form an MLS group, one seals whole frames, the other opens them), each pinned to
core 0, median of 7 runs.

$table

Native code uses the CPU's AES instructions; wasm has none, so the module runs RustCrypto's
constant-time software AES. A 1.5 Mbps camera needs about 0.0002 GB/s, so one core seals and
opens well over a hundred such streams even in wasm.
<!-- sframe-wasm:end -->"
