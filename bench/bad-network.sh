#!/usr/bin/env bash
# Media on bad networks: headless participants (`conclave loadtest media`)
# reach the SFU through the user-space impairment proxy (conclave-impair,
# in the load process), at 0, 2, 5 and 10 % loss each way with 0 to 200 ms
# of jitter, and through a 5 s outage. Reports the share of time video is
# frozen (Chromium's rule: a frame three usual gaps late, and at least
# 150 ms), loss after retransmission, latency, and how long the videos took
# to come back after the outage. Writes the table into docs/benchmarks.md.
#
#   bench/bad-network.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECONDS_MEASURED=${1:-20}
OUTAGE=5
ulimit -n "$(ulimit -Hn)"
build_release

DATA=$(mktemp -d)
PASSWORD='load test passphrase 2026'
PORT=18291
cleanup() { kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

"$BIN" admin --data-dir "$DATA" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null
# The server's media port is its HTTP port on 127.0.0.1; it tells
# participants to send to 127.0.0.2, where the proxy listens.
CONCLAVE_LOG=warn taskset -c 1 "$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:$PORT \
  --media-advertise 127.0.0.2 --media-tcp-listen off > "$DATA/server.out" 2> "$DATA/server.err" &
SERVER_PID=$!
for _ in $(seq 50); do curl -fsS http://127.0.0.1:$PORT/healthz > /dev/null 2>&1 && break; sleep 0.2; done

run() {
  CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" taskset -c 0 "$BIN" loadtest media --server http://127.0.0.1:$PORT \
    --server-pid "$SERVER_PID" --email bench@conclave.test --seconds "$SECONDS_MEASURED" \
    --rooms 1 --publishers 2 --subscribers 4 --fps 30 --frame-bytes 1200 \
    --impair-listen 127.0.0.2:$PORT --impair-upstream 127.0.0.1:$PORT --delay 20 --json "$@" | sed -n 's/^figures //p'
}
ROWS=""
row() {
  local label=$1 figures=$2
  ROWS="$ROWS$(python3 - "$label" "$figures" "$OUTAGE" <<'PY'
import json, sys
label, f, outage = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
recovery = "—"
if "outage" in label:
    recovery = "%.1f s" % max(0.0, f["longest_gap_ms"] / 1000 - outage)
print("| %s | %.2f %% | %.2f %% | %.0f ms | %.0f ms | %s |" % (
    label, f["frozen_pct"], f["loss_pct"], f["latency_p50_ms"], f["latency_p99_ms"], recovery))
PY
)
"
}
for level in "0 0" "2 50" "5 200" "10 200"; do
  set -- $level
  echo "== $1 % loss, up to $2 ms jitter" >&2
  row "$1 % loss, 20 ms + up to $2 ms jitter" "$(run --loss "$1" --jitter "$2")"
done
echo "== a ${OUTAGE} s outage" >&2
row "no loss, a ${OUTAGE} s outage" "$(run --outage "$OUTAGE")"

SECTION=$(cat <<EOT
<!-- bad-network:start -->
## Media on bad networks

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores), release build, by
\`bench/bad-network.sh $SECONDS_MEASURED\`: one meeting of 2 publishers (30 fps, 1,200-byte
frames, and audio) and 4 subscribers, each a str0m peer in the load process, whose media passes
through the user-space impairment proxy (\`conclave-impair\`, seeded: loss each way, 20 ms delay
plus uniform jitter, in order) to the SFU. Video frozen is the share of each video's time spent in
freezes, by Chromium's rule (a frame later than three usual gaps and at least 150 ms after the one
before), over the ${SECONDS_MEASURED} s measured; the headless peers have no jitter buffer, so this
is stricter than what a browser, which smooths jitter before it renders, shows. Loss is frames
never received after retransmission. Recovery is how long after the network came back the videos
moved again (each video's longest gap less the outage). Target: video frozen under 1 % of the
time at 5 % loss and 200 ms jitter.

| network | video frozen | frames lost | latency p50 | latency p99 | recovery after the outage |
|---|---|---|---|---|---|
$ROWS
<!-- bad-network:end -->
EOT
)
write_section bad-network "$SECTION"
