#!/usr/bin/env bash
# Media on bad networks, measured twice, at 0, 2, 5 and 10 % loss each way
# with 0 to 200 ms of jitter, and through a 5 s outage:
#  - headless participants (`conclave loadtest media`, each on a seeded bad
#    network made at its own socket by conclave-impair), through Conclave and
#    through Janus's VideoRoom in turns: the share of time video is frozen
#    (Chromium's rule: a frame three usual gaps late, and at least 150 ms),
#    loss after retransmission, latency, and how long the videos took to come
#    back after the outage;
#  - two people in real Chromium (bench/browser-network.mjs, `conclave
#    impair` in front of the media port): Chromium's own freeze counters,
#    audio concealment, its jitter buffer's delay and the recovery time.
# Writes both tables into docs/benchmarks.md.
#
#   bench/bad-network.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/sfus.sh
SECONDS_MEASURED=${1:-20}
OUTAGE=5
ulimit -n "$(ulimit -Hn)"
ensure_debian chromium chromium
# The browser half reads Chromium's statistics through the test build's hooks.
(cd web && CONCLAVE_WEB_TEST_HOOKS=1 npm run --silent build > /dev/null)
export CONCLAVE_ALLOW_TEST_HOOKS=1
build_release

WORK=$(mktemp -d)
SFU_WORK=$WORK
PASSWORD='load test passphrase 2026'
cleanup() { sfu_stop; rm -rf "$WORK"; }
trap cleanup EXIT
janus_configure "$WORK/janus"
"$BIN" admin --data-dir "$WORK/conclave" bootstrap --email bench@conclave.test --password "$PASSWORD" --org Bench > /dev/null

# run SFU ARGS...: one measured run on a fresh server; prints its figures.
run() {
  local sfu=$1; shift
  sfu_start "$sfu"
  CONCLAVE_LOADTEST_PASSWORD="$PASSWORD" taskset -c 0 "$BIN" loadtest media --sfu "$sfu" --server "$SFU_URL" \
    --server-pid "$SFU_PID" --email bench@conclave.test --media-bind "$HOST_IP" --seconds "$SECONDS_MEASURED" \
    --rooms 1 --publishers 2 --subscribers 4 --fps 30 --frame-bytes 1200 --delay 20 --json "$@" | sed -n 's/^figures //p'
  sfu_stop
}
ROWS=""
row() {
  local label=$1 sfu=$2 figures=$3
  ROWS="$ROWS$(python3 - "$label" "$sfu" "$figures" "$OUTAGE" <<'PY'
import json, sys
label, sfu, f, outage = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4])
recovery = "—"
if "outage" in label:
    recovery = "%.1f s" % max(0.0, f["longest_gap_ms"] / 1000 - outage)
print("| %s | %s | %.2f %% | %.2f %% | %.0f ms | %.0f ms | %s |" % (
    label, sfu, f["frozen_pct"], f["loss_pct"], f["latency_p50_ms"], f["latency_p99_ms"], recovery))
PY
)
"
}
for level in "0 0" "2 50" "5 200" "10 200" "outage"; do
  set -- $level
  if [ "$1" = outage ]; then
    label="no loss, a ${OUTAGE} s outage"
    set -- --outage "$OUTAGE"
  else
    label="$1 % loss, 20 ms + up to $2 ms jitter"
    set -- --loss "$1" --jitter "$2"
  fi
  for sfu in conclave janus; do
    echo "== $label, $sfu" >&2
    row "$label" "$([ "$sfu" = conclave ] && echo Conclave || echo Janus)" "$(run "$sfu" "$@")"
  done
done

echo "== Chromium" >&2
# The same two people through Janus's VideoRoom, a Janus of its own whose
# media ports are advertised on 127.0.0.2, where the proxy relays each.
janus_configure "$WORK/janus-browser" 127.0.0.2 20000-20031
sfu_start janus
TARGET_RUNS=""
for _ in 1 2 3 4 5; do TARGET_RUNS="$TARGET_RUNS,5/200,5/200/browser,5/200/janus"; done
BROWSER=$(cd web && JANUS_URL="$SFU_URL" JANUS_MEDIA="$HOST_IP:20000-20031" CONCLAVE_BIN="$BIN" \
  node ../bench/browser-network.mjs "$SECONDS_MEASURED" "0/0,0/0/janus,2/50,2/50/janus$TARGET_RUNS,10/200,10/200/janus,5/0,0/200" | tail -1)
sfu_stop
BROWSER_ROWS=$(python3 - "$BROWSER" <<'PY'
import json, sys
# A level measured several times (the target's) shows the run of median
# freeze share, and how many runs it is the median of.
runs = {}
for r in json.loads(sys.argv[1])["rows"]:
    key = (r["loss"], r["jitter"], r.get("browser_hold", False), r.get("outage_s"), r.get("server", "conclave"))
    runs.setdefault(key, []).append(r)
for rs in runs.values():
    rs.sort(key=lambda r: r["frozen_pct"])
    r = rs[(len(rs) - 1) // 2]
    if "outage_s" in r:
        label = "no loss, a %d s outage" % r["outage_s"]
    else:
        label = "%d %% loss, 20 ms + up to %d ms jitter" % (r["loss"], r["jitter"])
    server = "Janus" if r.get("server") == "janus" else "Conclave"
    if r.get("browser_hold"):
        server += ", the browser's own hold"
    if len(rs) > 1:
        label += " (median of %d runs: %s)" % (len(rs), ", ".join("%.2f %%" % x["frozen_pct"] for x in rs))
    recovery = "%.1f s" % (r["recovery_ms"] / 1000) if "recovery_ms" in r else "—"
    picture = "%dp" % r["height"] if r.get("height") else "—"
    print("| %s | %s | %.2f %% | %d | %.1f | %s | %.1f %% | %.1f %% | %.0f ms | %.1f %% | %s |" % (
        label, server, r["frozen_pct"], r["freezes"], r["fps"], picture, r["packets_lost_pct"], r["repaired_pct"],
        r["playout_delay_ms"], r["audio_concealed_pct"], recovery))
PY
)

SECTION=$(cat <<EOT
<!-- bad-network:start -->
## Media on bad networks

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores), release build, by
\`bench/bad-network.sh $SECONDS_MEASURED\`: one meeting of 2 publishers (30 fps, 1,200-byte
frames, and audio) and 4 subscribers, each a str0m peer in the load process on a bad network of
its own, made at its socket (\`conclave-impair\`'s \`Path\`, seeded per participant: loss each way,
20 ms delay plus uniform jitter, in order). The same participants on the same networks meet
through Conclave and through Janus's VideoRoom ($JANUS_VERSION, Debian's package, its defaults
for retransmissions), each run on a fresh server pinned to one core, the two taking turns. Video frozen is the share of each video's time spent in
freezes, by Chromium's rule (a frame later than three usual gaps and at least 150 ms after the one
before), over the ${SECONDS_MEASURED} s measured; the headless peers have no jitter buffer, so this
is stricter than what a browser, which smooths jitter before it renders, shows. Loss is frames
never received after retransmission. Recovery is how long after the network came back the videos
moved again (each video's longest gap less the outage). Target: video frozen under 1 % of the
time at 5 % loss and 200 ms jitter.

| network | server | video frozen | frames lost | latency p50 | latency p99 | recovery after the outage |
|---|---|---|---|---|---|---|
$ROWS

**In Chromium.** Two people in Debian's Chromium (headless, fake camera and microphone, the app's
own simulcast camera, no end-to-end encryption so the two cores go to the codecs), each meeting on
one network through \`conclave impair\` (seed 7, in order), measured for ${SECONDS_MEASURED} s after
8 s to settle. Video frozen is Chromium's \`totalFreezesDuration\` over the time of each received
video, freezes its \`freezeCount\`, frame rate what was decoded per video, picture
the height of the video received at the end (the simulcast layer the server chose), packets lost what
Chromium counts lost on its own link (a packet the server sent again still counts), repaired
what came back as a retransmission, playout delay the mean time Chromium's jitter buffer held a
frame, audio concealed the share of samples Chromium made up. Recovery is how long after the
network came back both sides decoded ten frames more.

The rows marked Janus are the same two people on the same networks meeting through Janus's
VideoRoom ($JANUS_VERSION, a server of its own whose media ports \`conclave impair --ports\`
stands in front of): a page of the benchmark's own (\`bench/janus-meeting.mjs\`) publishes the
same camera, microphone and three VP8 simulcast layers, and subscribes to the other person as
Janus's own web client does. Janus forwards each subscriber the top layer (it chooses none by
bandwidth), and the page holds video as long as Chromium chooses, as Janus's clients do.

Five things keep video moving on a lossy link. While its link loses packets, the app holds
received video for a retransmission's round trip (\`web/src/playout.ts\`: 1.2 × the longest
round trip of the last 30 s + 66 ms, at most 600 ms; where 2 % or more of its video packets
were lost over the last 10 s, counted stream by stream, 2.2 ×, at most 1 s, since a first
repair then often fails; the hold grows at most 120 ms a second, as Chromium pauses the picture
by each step up; the browser's own choice again 15 s after the last packet asked for again). The SFU answers a subscriber's request for a packet for 2 s
(\`crates/conclave-sfu/src/peer.rs\`): a packet of a frame that later frames refer to stalls the
picture until it comes. And when a publisher's packet never arrives, even after retransmission,
the SFU asks for that layer's keyframe as soon as no repair can come any more
(\`crates/conclave-sfu/src/holes.rs\`: once the packet has left str0m's window of the last 100,
or after five of the link's repair times, when str0m's last request would have been answered)
instead of leaving it to the receiving browser, which waits about 3 s. And where a publisher's
link loses 2 % or more, a simulcast layer that sends str0m's window of 100 packets sooner than
three of the link's repairs take is not forwarded while a lower one can be
(\`crates/conclave-sfu/src/repair.rs\`; on the 5 % and 200 ms network, the 720p layer; a layer
is taken at no less than the packet rate of its floor bitrate, as one its publisher's estimate
starves measures slow until it is let go), and a
step up that the bandwidth estimate undid within 20 s makes the next one wait twice as long
(\`layers.rs\`): each switch waits for a keyframe, the frame with the most packets to lose.
And a publisher's repair that comes a round trip late is written twice to each subscriber
(\`crates/conclave-sfu/src/sfu/forwarding.rs\`): lost again on the way out, it would wait a
round trip of the subscriber's link more, past the hold.
The row marked *the browser's own hold* is the same
network without the app's hold, measured in the same run. The 5 % and 200 ms rows are each the
median of five runs, the two holds and Janus taking turns (a few freezes more or less move a
20 s run by percents); the rows of 5 % loss without jitter and of jitter without loss split that
network into its parts.

| network | server | video frozen | freezes | frames/s | picture | packets lost | repaired | playout delay | audio concealed | recovery after the outage |
|---|---|---|---|---|---|---|---|---|---|---|
$BROWSER_ROWS
<!-- bad-network:end -->
EOT
)
write_section bad-network "$SECTION"
