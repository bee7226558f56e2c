#!/usr/bin/env bash
# Conclave's SFU beside Janus's VideoRoom, under the same load from the same
# code (`conclave loadtest media --sfu conclave|janus`), in turns A B A B,
# each run against a freshly started server pinned to core 1 (the load on
# core 0). Installs Janus from Debian's packages when it is missing and
# configures it on loopback in a directory of its own. Writes the
# side-by-side tables into docs/benchmarks.md.
#
#   bench/sfu-vs-janus.sh [SECONDS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/sfus.sh
SECONDS_MEASURED=${1:-10}
REPEATS=${2:-2}
ulimit -n "$(ulimit -Hn)"

build_release
echo "== the floor: recvmmsg + SRTP-sized AES-GCM open and seal + sendmmsg" >&2
FLOOR=$(cargo bench -q -p conclave-sfu --bench floor 2> /dev/null | sed -n 's/.*median \([0-9.]*\) µs.*/\1/p')
[ -n "$FLOOR" ] || { echo "the floor benchmark printed no figure" >&2; exit 1; }

WORK=$(mktemp -d)
PASSWORD='load test passphrase 2026'
RESULTS="$WORK/figures.jsonl"
SFU_WORK=$WORK
cleanup() { sfu_stop; rm -rf "$WORK"; }
trap cleanup EXIT

janus_configure "$WORK/janus"

# --- Conclave: one organisation with an owner the load test signs in as.
"$BIN" admin --data-dir "$WORK/conclave" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null

# run SFU SCENARIO ARGS...: one measured run on a fresh server, its figures appended to $RESULTS.
run() {
  local sfu=$1 scenario=$2; shift 2
  sfu_start "$sfu"
  echo "== $scenario on $sfu" >&2
  local out
  out=$(CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" taskset -c 0 "$BIN" loadtest media --sfu "$sfu" --server "$SFU_URL" \
    --server-pid "$SFU_PID" --email bench@conclave.test --media-bind "$HOST_IP" \
    --seconds "${RUN_SECONDS:-$SECONDS_MEASURED}" --json "$@")
  echo "$out" | grep -v '^figures ' >&2
  echo "$out" | sed -n 's/^figures //p' | python3 -c "
import json, sys
f = json.load(sys.stdin); f['scenario'] = sys.argv[1]; f['server'] = sys.argv[2]; f['args'] = sys.argv[3]
print(json.dumps(f))" "$scenario" "$sfu" "$*" >> "$RESULTS"
  sfu_stop
}

# The scenarios: a label, then the load test's arguments (simulcast off on both).
SCENARIOS=(
  "a|5 publishers × 20 subscribers, ~1.5 Mbps video + audio|--rooms 1 --publishers 5 --subscribers 20 --fps 30 --frame-bytes 6000"
  "b|1 audio publisher → 500 subscribers|--rooms 1 --publishers 1 --subscribers 500 --no-video"
  "c|50 rooms × 4 participants, 15 fps × 1000 B video + audio|--rooms 50 --publishers 4 --subscribers 0 --fps 15 --frame-bytes 1000"
)
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r key label args <<< "$entry"
  for r in $(seq "$REPEATS"); do
    # shellcheck disable=SC2086
    run conclave "$key" $args
    # shellcheck disable=SC2086
    run janus "$key" $args
  done
done
# Conclave's own simulcast (Janus's load stays single-layer): reported apart.
for r in $(seq "$REPEATS"); do
  run conclave "a-simulcast" --rooms 1 --publishers 5 --subscribers 20 --fps 30 --frame-bytes 6000 --simulcast
done
# How many audio subscribers each server carries: up to the first step that
# loses more than 1 % of frames (the tables also hold a 400 ms p99 bound:
# past ITU-T G.114's limit for conversation, a late frame is a lost one).
for sfu in conclave janus; do
  for n in 50 100 250 500 750 1000 1250; do
    RUN_SECONDS=5 run "$sfu" "ramp-$n" --rooms 1 --publishers 1 --subscribers "$n" --no-video
    tail -1 "$RESULTS" | python3 -c '
import json, sys
f = json.load(sys.stdin)
sys.exit(0 if f["loss_pct"] <= 1.0 else 1)' || break
  done
done

mkdir -p docs/bench-data && cp "$RESULTS" docs/bench-data/sfu-vs-janus.jsonl
SECTION=$(python3 bench/sfu_tables.py "$RESULTS" "$SECONDS_MEASURED" "$REPEATS" "$JANUS_VERSION" "$FLOOR" \
  "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p')")
echo "$SECTION"
write_section sfu-vs-janus "$SECTION"
