#!/usr/bin/env bash
# Signaling benchmark: join → admitted latency (1,000 joins through the
# waiting room) and memory for 10,000 idle signaling connections, Conclave
# beside a minimal WebSocket server measured in the same run. Writes the
# table into docs/benchmarks.md.
#
#   bench/signaling.sh [JOINS] [IDLE]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
JOINS=${1:-1000}
IDLE=${2:-10000}
# Both ends hold one socket per connection.
ulimit -n "$(ulimit -Hn)"
build_release

DATA=$(mktemp -d)
PASSWORD='load test passphrase 2026'
cleanup() { kill "${SERVER_PID:-}" "${FLOOR_PID:-}" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

"$BIN" admin --data-dir "$DATA" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null
CONCLAVE_LOG=warn "$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:18181 > "$DATA/server.out" 2> "$DATA/server.err" &
SERVER_PID=$!
"$BIN" loadtest floor-server --listen 127.0.0.1:18182 > "$DATA/floor.out" &
FLOOR_PID=$!
for _ in $(seq 50); do
  curl -fsS http://127.0.0.1:18181/healthz > /dev/null 2>&1 && curl -fsS http://127.0.0.1:18182/healthz > /dev/null 2>&1 && break
  sleep 0.2
done

TABLE=$(CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" "$BIN" loadtest signaling \
  --server http://127.0.0.1:18181 --server-pid "$SERVER_PID" \
  --floor http://127.0.0.1:18182 --floor-pid "$FLOOR_PID" \
  --email bench@conclave.test --joins "$JOINS" --idle "$IDLE")
echo "$TABLE"

SECTION=$(cat <<EOT
<!-- signaling:start -->
## Signaling (join latency, idle connections)

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB), release build,
SQLite storage, by \`bench/signaling.sh $JOINS $IDLE\`. The floor is a minimal WebSocket echo
server (\`conclave loadtest floor-server\`, axum) doing one HTTP request, one handshake and one
message round trip per "join", measured interleaved with Conclave in the same run. Targets:
join → admitted p99 ≤ 50 ms; 10,000 idle signaling connections ≤ 500 MB. The meeting's waiting
room is off while joins are timed, so admission is the server's alone.

$TABLE
<!-- signaling:end -->
EOT
)
write_section signaling "$SECTION"
