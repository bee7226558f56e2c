#!/usr/bin/env bash
# Sign-in timing: failed sign-ins for real accounts beside sign-ins with
# emails no account has, interleaved in one run against a release build.
# Against credential stuffing the two must be indistinguishable.
#
#   bench/login.sh [ATTEMPTS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ATTEMPTS=${1:-200}
build_release
DATA=$(mktemp -d)
PASSWORD='load test passphrase 2026'
cleanup() { kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
"$BIN" admin --data-dir "$DATA" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null
CONCLAVE_LOG=warn "$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:18183 > /dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do curl -fsS http://127.0.0.1:18183/healthz > /dev/null 2>&1 && break; sleep 0.2; done
TABLE=$(CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" "$BIN" loadtest login --server http://127.0.0.1:18183 --email bench@conclave.test --attempts "$ATTEMPTS")
echo "$TABLE"
SECTION=$(cat <<EOT
<!-- login:start -->
## Sign-in timing (credential stuffing)

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores), release build, SQLite, by
\`bench/login.sh $ATTEMPTS\`. Each row compares failed sign-ins with a wrong password for real
accounts against sign-ins with emails no account has, alternating in the same run, each from its
own address. Both pay one Argon2id verification (19 MiB, 2 passes; a decoy hash for unknown
emails), so their times match and the answer (\`invalid-credentials\`) is the same.

$TABLE
<!-- login:end -->
EOT
)
write_section login "$SECTION"
