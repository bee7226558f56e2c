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
SECONDS_MEASURED=${1:-10}
REPEATS=${2:-2}
ulimit -n "$(ulimit -Hn)"

# Janus, and the openssl tool for its DTLS certificate, from Debian's packages.
if ! command -v janus > /dev/null || ! command -v openssl > /dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get install -y -q janus openssl > /dev/null ||
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q janus openssl > /dev/null; }
fi
JANUS_VERSION=$(dpkg-query -W -f='${Version}' janus)
build_release
echo "== the floor: recvmmsg + SRTP-sized AES-GCM open and seal + sendmmsg" >&2
FLOOR=$(cargo bench -q -p conclave-sfu --bench floor 2> /dev/null | sed -n 's/.*median \([0-9.]*\) µs.*/\1/p')
[ -n "$FLOOR" ] || { echo "the floor benchmark printed no figure" >&2; exit 1; }

WORK=$(mktemp -d)
PASSWORD='load test passphrase 2026'
RESULTS="$WORK/figures.jsonl"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

# Janus offers only non-loopback host candidates, so both servers' participants
# send from the machine's own address (the traffic stays on the loopback device).
HOST_IP=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$HOST_IP" ] || { echo "no global IPv4 address for Janus's candidates" >&2; exit 1; }

# --- Janus: only the VideoRoom plugin and the HTTP transport, on loopback.
JCFG="$WORK/janus"
mkdir -p "$JCFG"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=janus \
  -keyout "$JCFG/key.pem" -out "$JCFG/cert.pem" 2> /dev/null
LIB=$(dirname "$(dpkg -L janus | grep -m1 '/janus/plugins/libjanus_videoroom.so$')")/..
others() { ls "$LIB/$1" | grep -E '\.so$' | grep -v -x "$2" | paste -sd, -; }
cat > "$JCFG/janus.jcfg" <<EOF
general: {
  configs_folder = "$JCFG"
  plugins_folder = "$LIB/plugins"
  transports_folder = "$LIB/transports"
  events_folder = "$LIB/events"
  loggers_folder = "$LIB/loggers"
  debug_level = 3
  session_timeout = 0
}
certificates: { cert_pem = "$JCFG/cert.pem", cert_key = "$JCFG/key.pem" }
loggers: { disable = "$(others loggers none)" }
media: { rtp_port_range = "20000-60000" }
nat: { ice_enforce_list = "$HOST_IP", ignore_mdns = true }
plugins: { disable = "$(others plugins libjanus_videoroom.so)" }
transports: { disable = "$(others transports libjanus_http.so)" }
events: { broadcast = false, disable = "$(others events none)" }
EOF
cat > "$JCFG/janus.transport.http.jcfg" <<EOF
general: { json = "compact", base_path = "/janus", http = true, port = 18188, ip = "127.0.0.1", https = false }
admin: { admin_http = false }
EOF
echo 'general: { }' > "$JCFG/janus.plugin.videoroom.jcfg"

# --- Conclave: one organisation with an owner the load test signs in as.
"$BIN" admin --data-dir "$WORK/conclave" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null

start_server() {
  case "$1" in
    conclave)
      CONCLAVE_LOG=warn taskset -c 1 "$BIN" serve --data-dir "$WORK/conclave" --listen 127.0.0.1:18191 \
        --media-listen "$HOST_IP:18191" \
        > "$WORK/conclave.out" 2>&1 &
      SERVER_PID=$!
      HEALTH=http://127.0.0.1:18191/healthz ;;
    janus)
      taskset -c 1 janus -F "$JCFG" > "$WORK/janus.out" 2>&1 &
      SERVER_PID=$!
      HEALTH=http://127.0.0.1:18188/janus/info ;;
  esac
  for _ in $(seq 100); do curl -fsS "$HEALTH" > /dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 did not start:" >&2; tail -20 "$WORK/$1.out" >&2; exit 1
}

# run SFU SCENARIO ARGS...: one measured run on a fresh server, its figures appended to $RESULTS.
run() {
  local sfu=$1 scenario=$2; shift 2
  start_server "$sfu"
  local url=http://127.0.0.1:18191
  [ "$sfu" = janus ] && url=http://127.0.0.1:18188/janus
  echo "== $scenario on $sfu" >&2
  local out
  out=$(CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" taskset -c 0 "$BIN" loadtest media --sfu "$sfu" --server "$url" \
    --server-pid "$SERVER_PID" --email bench@conclave.test --media-bind "$HOST_IP" \
    --seconds "${RUN_SECONDS:-$SECONDS_MEASURED}" --json "$@")
  echo "$out" | grep -v '^figures ' >&2
  echo "$out" | sed -n 's/^figures //p' | python3 -c "
import json, sys
f = json.load(sys.stdin); f['scenario'] = sys.argv[1]; f['server'] = sys.argv[2]; f['args'] = sys.argv[3]
print(json.dumps(f))" "$scenario" "$sfu" "$*" >> "$RESULTS"
  stop_server
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
