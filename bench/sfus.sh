# Conclave's SFU and Janus's VideoRoom, the peer in the media benchmarks,
# started the same way (sourced, not run). Janus is installed from Debian's
# packages when missing and configured on loopback with only the VideoRoom
# plugin and the HTTP transport, in a directory of its own.

# janus_configure DIR [ADVERTISE RANGE]: writes Janus's configuration into
# DIR and sets JANUS_VERSION, JANUS_CONFIG and HOST_IP (Janus offers only
# non-loopback host candidates, so participants send from the machine's own
# address; the traffic stays on the loopback device). With ADVERTISE and
# RANGE (`127.0.0.2 20000-20031`), Janus's media ports are those and its
# candidates name ADVERTISE instead of HOST_IP, as behind a 1:1 NAT: where
# `conclave impair --ports` stands in front of each port.
janus_configure() {
  if ! command -v janus > /dev/null || ! command -v openssl > /dev/null; then
    local sudo
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get install -y -q janus openssl > /dev/null ||
      { $sudo apt-get update -q && $sudo apt-get install -y -q janus openssl > /dev/null; }
  fi
  JANUS_VERSION=$(dpkg-query -W -f='${Version}' janus)
  HOST_IP=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
  [ -n "$HOST_IP" ] || { echo "no global IPv4 address for Janus's candidates" >&2; exit 1; }
  JANUS_CONFIG=$1
  local advertise=${2:-} range=${3:-20000-60000} nat=""
  [ -z "$advertise" ] || nat=", nat_1_1_mapping = \"$advertise\", keep_private_host = false"
  mkdir -p "$JANUS_CONFIG"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=janus \
    -keyout "$JANUS_CONFIG/key.pem" -out "$JANUS_CONFIG/cert.pem" 2> /dev/null
  local lib
  lib=$(dirname "$(dpkg -L janus | grep -m1 '/janus/plugins/libjanus_videoroom.so$')")/..
  others() { ls "$lib/$1" | grep -E '\.so$' | grep -v -x "$2" | paste -sd, -; }
  cat > "$JANUS_CONFIG/janus.jcfg" <<JCFG
general: {
  configs_folder = "$JANUS_CONFIG"
  plugins_folder = "$lib/plugins"
  transports_folder = "$lib/transports"
  events_folder = "$lib/events"
  loggers_folder = "$lib/loggers"
  debug_level = 3
  session_timeout = 0
}
certificates: { cert_pem = "$JANUS_CONFIG/cert.pem", cert_key = "$JANUS_CONFIG/key.pem" }
loggers: { disable = "$(others loggers none)" }
media: { rtp_port_range = "$range" }
nat: { ice_enforce_list = "$HOST_IP", ignore_mdns = true$nat }
plugins: { disable = "$(others plugins libjanus_videoroom.so)" }
transports: { disable = "$(others transports libjanus_http.so)" }
events: { broadcast = false, disable = "$(others events none)" }
JCFG
  cat > "$JANUS_CONFIG/janus.transport.http.jcfg" <<JCFG
general: { json = "compact", base_path = "/janus", http = true, port = 18188, ip = "127.0.0.1", https = false }
admin: { admin_http = false }
JCFG
  echo 'general: { }' > "$JANUS_CONFIG/janus.plugin.videoroom.jcfg"
}

# sfu_start conclave|janus: a fresh server of that kind pinned to core 1
# (the load goes on core 0), sets SFU_PID and SFU_URL (what `conclave
# loadtest media --server` takes). Conclave's data is in $SFU_WORK/conclave
# (an organisation bootstrapped there beforehand); Janus's configuration is
# janus_configure's.
SFU_PID=""
sfu_start() {
  local health
  case "$1" in
    conclave)
      CONCLAVE_LOG=warn taskset -c 1 "$BIN" serve --data-dir "$SFU_WORK/conclave" --listen 127.0.0.1:18191 \
        --media-listen "$HOST_IP:18191" > "$SFU_WORK/conclave.out" 2>&1 &
      SFU_PID=$!
      SFU_URL=http://127.0.0.1:18191
      health=$SFU_URL/healthz ;;
    janus)
      taskset -c 1 janus -F "$JANUS_CONFIG" > "$SFU_WORK/janus.out" 2>&1 &
      SFU_PID=$!
      SFU_URL=http://127.0.0.1:18188/janus
      health=$SFU_URL/info ;;
  esac
  for _ in $(seq 100); do curl -fsS "$health" > /dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 did not start:" >&2; tail -20 "$SFU_WORK/$1.out" >&2; exit 1
}

sfu_stop() {
  if [ -n "$SFU_PID" ]; then kill "$SFU_PID" 2>/dev/null || true; wait "$SFU_PID" 2>/dev/null || true; fi
  SFU_PID=""
}
