#!/usr/bin/env bash
# Time from a host's "Admit" click to the guest's first decoded remote
# video frame, in real Chromium through a release `conclave serve` on
# loopback (the figure the browser test measures), over several runs.
# Writes the table into docs/benchmarks.md.
#
#   bench/web-join.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ensure_debian chromium chromium
RUNS=${1:-5}
# The browser test reads the meeting through the test build's hooks.
(cd web && CONCLAVE_WEB_TEST_HOOKS=1 npm run --silent build)
export CONCLAVE_ALLOW_TEST_HOOKS=1
build_release
FIGURES=()
for i in $(seq "$RUNS"); do
  echo "== run $i of $RUNS" >&2
  LINE=$(cd web && CONCLAVE_BIN="$BIN" node e2e/meeting.test.mjs | grep '"figures"')
  FIGURES+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["figures"]["admission_to_first_frame_ms"])' "$LINE")")
done
SORTED=$(printf '%s\n' "${FIGURES[@]}" | sort -n | tr '\n' ' ')
MEDIAN=$(printf '%s\n' "${FIGURES[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "admission → first decoded frame (ms): $SORTED; median $MEDIAN"
SECTION=$(cat <<EOT
<!-- web-join:start -->
## Browser: admission → first decoded remote frame

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores), release server, Debian Chromium
headless with a fake camera, by \`bench/web-join.sh $RUNS\`: the time from the host's click on
"Admit" to the guest's first decoded video frame (ICE, DTLS, the SFU's offer, a keyframe).
Target ≤ 1 s on loopback.

| runs (ms, sorted) | median |
|---|---|
| $SORTED | **$MEDIAN ms** |
<!-- web-join:end -->
EOT
)
write_section web-join "$SECTION"
