// SFrame throughput of the browser's E2EE module (wasm, in Node's V8 on one
// core), through the same API the media worker uses: two devices form a
// group by the delivery-service messages, then one seals frames and the
// other opens them. Prints one JSON line per frame size (GB/s, median of 7).
//
//   node bench/e2ee-wasm.mjs web/src/e2ee/pkg

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const pkg = resolve(process.argv[2] ?? "web/src/e2ee/pkg");
const { default: init, Device } = await import(pathToFileURL(join(pkg, "conclave_e2ee_wasm.js")).href);
await init({ module_or_path: readFileSync(join(pkg, "conclave_e2ee_wasm_bg.wasm")) });

// The group: device 1 creates it and adds device 2, as the server would ask.
const host = new Device("1");
const guest = new Device("2");
host.handle(JSON.stringify({ type: "e2ee_create_group" }));
const kp = JSON.parse(guest.key_package()).key_package;
const commit = JSON.parse(host.handle(JSON.stringify({ type: "e2ee_add_request", participant_id: 2, key_package: kp }))).send[0];
host.handle(JSON.stringify({ type: "e2ee_commit", from: 1, epoch: 1, commit: commit.commit }));
guest.handle(JSON.stringify({ type: "e2ee_welcome", epoch: 1, welcome: commit.welcome }));
if (!host.security_code() || host.security_code() !== guest.security_code()) throw new Error("the devices did not form a group");

const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
function rate(total, f) {
  const samples = [];
  for (let i = 0; i < 7; i++) {
    const start = process.hrtime.bigint();
    f();
    samples.push(total / Number(process.hrtime.bigint() - start));
  }
  return median(samples); // bytes per ns = GB/s
}

for (const [label, size, count] of [["50 KB video", 50_000, 400], ["160 B audio", 160, 40_000]]) {
  const frame = new Uint8Array(size).fill(0x5a);
  const total = size * count;
  const encrypt = rate(total, () => {
    for (let i = 0; i < count; i++) host.encrypt("audio", frame);
  });
  // Each run opens frames it has not opened yet (SFrame refuses replays).
  const fresh = () => Array.from({ length: count }, () => host.encrypt("audio", frame));
  const batches = Array.from({ length: 7 }, fresh);
  let run = 0;
  const decrypt = rate(total, () => {
    for (const f of batches[run++]) guest.decrypt("audio", f);
  });
  if (guest.decrypt("audio", host.encrypt("audio", frame)).length !== size) throw new Error("a frame did not open to its size");
  console.log(JSON.stringify({ frame: label, encrypt_gbps: encrypt, decrypt_gbps: decrypt }));
}
