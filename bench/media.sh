#!/usr/bin/env bash
# Media-plane benchmark: headless participants (str0m peers in one load
# process) send synthetic audio and VP8-framed video through the SFU of a
# release `conclave serve`. Reports loss, jitter, send → receive latency and
# the server's CPU time per datagram it sent, and writes the table into
# docs/benchmarks.md.
#
#   bench/media.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECONDS_MEASURED=${1:-10}
ulimit -n "$(ulimit -Hn)"
build_release

DATA=$(mktemp -d)
PASSWORD='load test passphrase 2026'
cleanup() { kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

"$BIN" admin --data-dir "$DATA" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null
# The server gets a core of its own, the load process the other, so the
# server's figures are not the load generator's contention.
CONCLAVE_LOG=warn taskset -c 1 "$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:18191 > "$DATA/server.out" 2> "$DATA/server.err" &
SERVER_PID=$!
for _ in $(seq 50); do curl -fsS http://127.0.0.1:18191/healthz > /dev/null 2>&1 && break; sleep 0.2; done

run() {
  CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" taskset -c 0 "$BIN" loadtest media --server http://127.0.0.1:18191 \
    --server-pid "$SERVER_PID" --email bench@conclave.test --seconds "$SECONDS_MEASURED" "$@"
}
echo "== small meeting" >&2
SMALL=$(run --rooms 1 --publishers 3 --subscribers 0 --fps 30 --frame-bytes 1000)
echo "$SMALL"
LARGE=""
for i in 1 2 3; do
  # The previous run's 500 participants take a few seconds to leave; a run
  # started meanwhile times out admitting its own.
  sleep 10
  echo "== 1,000 forwarded video streams, run $i of 3" >&2
  RUN=$(run --rooms 10 --publishers 2 --subscribers 49 --fps 15 --frame-bytes 1000 --no-audio)
  echo "$RUN"
  LARGE="$LARGE$RUN
"
done
sleep 10
echo "== simulcast" >&2
SIMULCAST=$(run --rooms 1 --publishers 2 --subscribers 8 --fps 30 --frame-bytes 4000 --simulcast)
echo "$SIMULCAST"

SECTION=$(cat <<EOT
<!-- media:start -->
## Media plane (SFU forwarding)

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB), release build,
by \`bench/media.sh $SECONDS_MEASURED\`. The load process (\`conclave loadtest media\`) runs every
participant as its own str0m peer on loopback, so it competes with the server for the same two
cores (pinned: the server on one core, the load on the other). Latency is send → receive on the machine's clock, through DTLS-SRTP (AES-256-GCM) both
ways: an upper bound of what the SFU adds. CPU per datagram is the server process's user + system
time divided by the datagrams its SFU sent in the window (RTP, RTCP and STUN).

\`\`\`
$SMALL

$LARGE

$SIMULCAST
\`\`\`
<!-- media:end -->
EOT
)
write_section media "$SECTION"
