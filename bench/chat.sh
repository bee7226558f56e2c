#!/usr/bin/env bash
# Team messaging beside Synapse and ejabberd, under the same load in the
# same run (`conclave loadtest chat`): messages per second offered into a
# channel of 100 people with 2 devices each connected, and into 1,000
# direct conversations among them; fan-out latency to every other device,
# server CPU per delivery (PostgreSQL's counted too), resident memory.
# Every system persists every message in the same PostgreSQL (synchronous
# commit on) before it counts as sent:
#   Conclave  --database-url, each message committed before `201`;
#   Synapse   its PostgreSQL database, an event persisted before the send's `200`;
#   ejabberd  default_db sql, with mod_mam (message archive) storing every
#             message, the room's and each one-to-one chat's, as it routes it.
# Servers run on core 1, the load generator on core 0.
#
#   bench/chat.sh [SECONDS] [RATES]
# CHAT_SYSTEMS="conclave ejabberd" and CHAT_SHAPES=dms run a part (the
# table then shows that part only).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECONDS_MEASURED=${1:-10}
RATES=${2:-50,100,300,1000,2000,5000}
SYNAPSE_VERSION=1.163.2
ulimit -n "$(ulimit -Hn)"
build_release

# The peers, installed once (PyPI and Debian), the same way on every machine.
SYNAPSE_VENV=$HOME/.cache/conclave-bench/synapse-$SYNAPSE_VERSION
if [ ! -x "$SYNAPSE_VENV/bin/python" ]; then
  python3 -m venv "$SYNAPSE_VENV"
  "$SYNAPSE_VENV/bin/pip" install -q "matrix-synapse[postgres]==$SYNAPSE_VERSION"
fi
if ! command -v ejabberdctl > /dev/null || [ ! -d /usr/lib/erlang/lib/p1_pgsql-* ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q ejabberd erlang-p1-pgsql > /dev/null ||
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q ejabberd erlang-p1-pgsql > /dev/null; }
fi

WORK=$(mktemp -d)
PASSWORD='load test passphrase 2026'
PG="psql -h 127.0.0.1 -U postgres -d test -q -v ON_ERROR_STOP=1"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  ejabberdctl --config-dir "$WORK/ejabberd" --node ejabberd-bench@localhost stop > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fresh_db() { $PG -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1 ${2:-}"; }
wait_for() { for _ in $(seq 150); do eval "$1" > /dev/null 2>&1 && return 0; sleep 0.2; done; echo "not up: $1" >&2; return 1; }

load() {
  CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" taskset -c 0 "$BIN" loadtest chat --json \
    --seconds "$SECONDS_MEASURED" --rates "$RATES" "$@" | tee -a "$WORK/figures" >&2
}

conclave() {
  local shape=$1 port=18391
  fresh_db conclave_chat_bench
  local data="$WORK/conclave-$shape"
  mkdir -p "$data"
  local db=postgres://postgres@127.0.0.1:5432/conclave_chat_bench
  "$BIN" admin --data-dir "$data" --database-url "$db" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null
  CONCLAVE_LOG=warn taskset -c 1 "$BIN" serve --data-dir "$data" --database-url "$db" --listen 127.0.0.1:$port \
    --media-tcp-listen off > "$data/server.out" 2> "$data/server.err" &
  local pid=$!
  PIDS+=("$pid")
  wait_for "curl -fsS http://127.0.0.1:$port/healthz" || { tail -n 20 "$data/server.err" >&2; return 1; }
  load --system conclave --server http://127.0.0.1:$port --server-pid "$pid" --email bench@conclave.test --shape "$shape"
  kill "$pid"; wait "$pid" 2> /dev/null || true
}

synapse() {
  local shape=$1 port=18392 dir="$WORK/synapse-$1"
  fresh_db synapse_chat_bench "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
  mkdir -p "$dir"
  "$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver --server-name bench.local --config-path "$dir/homeserver.yaml" \
    --data-directory "$dir" --generate-config --report-stats=no > /dev/null
  "$SYNAPSE_VENV/bin/python" - "$dir" "$port" <<'PY'
import sys, yaml, pathlib
d, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])
c = yaml.safe_load((d / "homeserver.yaml").read_text())
c["listeners"] = [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                   "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}]
c["database"] = {"name": "psycopg2", "args": {"user": "postgres", "host": "127.0.0.1", "port": 5432,
                 "database": "synapse_chat_bench", "cp_min": 5, "cp_max": 10}}
c["enable_registration"] = True
c["enable_registration_without_verification"] = True
c["presence"] = {"enabled": False}
c["trusted_key_servers"] = []
c["report_stats"] = False
c["bcrypt_rounds"] = 4  # accounts are made before measuring; this only shortens the set-up
# No rate limits: the load is the point.
big = {"per_second": 1000000, "burst_count": 1000000}
for key in ("rc_message", "rc_registration", "rc_joins_per_room", "rc_3pid_validation", "rc_room_creation",
            "rc_admin_redaction", "rc_media_create", "rc_delayed_event_mgmt", "rc_reports"):
    c[key] = big
c["rc_login"] = {"address": big, "account": big, "failed_attempts": big}
c["rc_joins"] = {"local": big, "remote": big}
c["rc_invites"] = {"per_room": big, "per_user": big, "per_issuer": big}
(d / "homeserver.yaml").write_text(yaml.safe_dump(c))
log = d / "bench.local.log.config"
# Its log beside its data, not wherever the script was started.
text = log.read_text().replace("level: INFO", "level: WARNING")
logging = yaml.safe_load(text)
for handler in logging.get("handlers", {}).values():
    if "filename" in handler:
        handler["filename"] = str(d / "homeserver.log")
log.write_text(yaml.safe_dump(logging))
PY
  (cd "$dir" && exec taskset -c 1 "$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver -c homeserver.yaml > synapse.out 2>&1) &
  local pid=$!
  PIDS+=("$pid")
  wait_for "curl -fsS http://127.0.0.1:$port/_matrix/client/versions" || { tail -n 20 "$dir/synapse.out" >&2; return 1; }
  load --system synapse --server http://127.0.0.1:$port --server-pid "$pid" --shape "$shape"
  kill "$pid"; wait "$pid" 2> /dev/null || true
}

ejabberd() {
  local shape=$1 port=18393 dir="$WORK/ejabberd"
  fresh_db ejabberd_chat_bench
  psql -h 127.0.0.1 -U postgres -d ejabberd_chat_bench -q -f /usr/share/ejabberd/sql/pg.sql > /dev/null
  rm -rf "$dir" && mkdir -p "$dir/spool" "$dir/logs"
  cat > "$dir/ejabberd.yml" <<YML
hosts: ["bench.local"]
loglevel: warning
listen:
  - port: $port
    ip: "127.0.0.1"
    module: ejabberd_c2s
    shaper: none
    access: all
    starttls_required: false
    max_stanza_size: 262144
default_db: sql
sql_type: pgsql
sql_server: "127.0.0.1"
sql_port: 5432
sql_database: "ejabberd_chat_bench"
sql_username: "postgres"
sql_password: ""
auth_method: sql
registration_timeout: infinity
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  register:
    allow: all
  muc_create:
    allow: local
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 100000
  c2s_shaper: none
modules:
  mod_carboncopy: {}
  mod_disco: {}
  mod_mam:
    default: always
  mod_muc:
    access_create: muc_create
    max_users: 1000
    max_users_admin_threshold: 1000
    default_room_options:
      persistent: true
      mam: true
  mod_offline: {}
  mod_ping: {}
  mod_register:
    ip_access: all
    access: register
  mod_roster: {}
  mod_stream_mgmt: {}
YML
  printf 'ERLANG_NODE=ejabberd-bench@localhost\n' > "$dir/ejabberdctl.cfg"
  chown -R ejabberd "$dir"
  chmod a+x "$WORK" # ejabberdctl runs the node as the ejabberd user
  taskset -c 1 ejabberdctl --config-dir "$dir" --spool "$dir/spool" --logs "$dir/logs" --node ejabberd-bench@localhost \
    foreground > "$dir/logs/foreground.out" 2>&1 &
  PIDS+=("$!")
  wait_for "bash -c 'echo > /dev/tcp/127.0.0.1/$port'" || { tail -n 20 "$dir"/logs/*.log >&2; return 1; }
  local pid
  pid=$(pgrep -f "beam.smp.*ejabberd-bench" | head -1)
  load --system ejabberd --server 127.0.0.1:$port --server-pid "$pid" --domain bench.local --shape "$shape"
  ejabberdctl --config-dir "$dir" --node ejabberd-bench@localhost stop > /dev/null 2>&1 || kill "$pid"
  sleep 2
}

for shape in ${CHAT_SHAPES:-channel dms}; do
  for system in ${CHAT_SYSTEMS:-conclave synapse ejabberd}; do
    echo "== $system, $shape" >&2
    $system "$shape"
  done
done

TABLE=$(python3 bench/chat_tables.py "$WORK/figures" "$SECONDS_MEASURED")
write_section chat "$TABLE"
