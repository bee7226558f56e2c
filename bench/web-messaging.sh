#!/usr/bin/env bash
# Team messaging in real Chromium against a release `conclave serve` on
# loopback (bench/web-messaging.mjs): the conversation list's time to
# interactive with 200 conversations, a 10,000-message channel read,
# opened and scrolled, and send → shown between two people; each beside
# its floor measured in the same run. Writes the table into
# docs/benchmarks.md.
#
#   bench/web-messaging.sh [SAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ensure_debian chromium chromium
SAMPLES=${1:-200}
build_release
LINE=$(cd web && CONCLAVE_BIN="$BIN" node ../bench/web-messaging.mjs "$SAMPLES" | grep '"figures"')
echo "$LINE"
SECTION=$(python3 - "$LINE" "$SAMPLES" "$(nproc)" <<'PY'
import json, sys, datetime
f = json.loads(sys.argv[1])["figures"]
samples, cores = sys.argv[2], sys.argv[3]
def runs(xs): return ", ".join(str(x) for x in sorted(xs))
s10k, sdm = f["scroll_10k"], f["scroll_direct_message"]
print(f"""<!-- web-messaging:start -->
## Browser: team messaging

Measured {datetime.date.today()} on this machine ({cores} cores), release server, Debian Chromium
headless, by `bench/web-messaging.sh {samples}`. Every conversation end-to-end encrypted; the
browser's device opens everything in its E2EE worker (wasm).

| figure | measured | beside it, in the same run |
|---|---|---|
| app opened → list of 200 conversations interactive (median of 5 loads) | **{f['list_200_median_ms']} ms** ({runs(f['list_200_interactive_ms'])}) | list of 1 conversation: {f['list_1_median_ms']} ms ({runs(f['list_1_interactive_ms'])}) |
| send → shown on the other person's screen, direct message ({f['samples']} messages) | **p50 {f['send_to_shown_p50_ms']} ms, p99 {f['send_to_shown_p99_ms']} ms** | a REST round trip from the page: p50 {f['rest_round_trip_p50_ms']} ms, p99 {f['rest_round_trip_p99_ms']} ms |
| 10,000-message channel: this device reads it from its history copies once added | **{f['history_read_s']} s** | piped in by `conclave chat send -`: {f['bulk_piped_in_s']} s |
| 10,000-message channel: clicked → its last message shown | **first {f['open_10k_channel_ms'][0]} ms**, then {', '.join(str(x) for x in f['open_10k_channel_ms'][1:])} ms | |
| scrolling up through it with the mouse wheel (150 steps) | **{s10k['missed']} of {s10k['frames']} frames over 25 ms**; p95 {s10k['p95_ms']} ms, worst {s10k['worst_ms']} ms | a direct message of {f['samples']}: {sdm['missed']} of {sdm['frames']} over 25 ms; p95 {sdm['p95_ms']} ms, worst {sdm['worst_ms']} ms |

The list is interactive when every conversation's button is in the page and enabled, timed from the
navigation's start. The channel renders its latest 150 messages and 150 more each time the reader
nears the top, so opening it costs about what opening a short one does; a frame over 25 ms is one
missed at 60 Hz.
<!-- web-messaging:end -->""")
PY
)
write_section web-messaging "$SECTION"
