"""The side-by-side tables of bench/sfu-vs-janus.sh, from its runs' figures
(one JSON object per line): medians with min–max per scenario and server,
Conclave's CPU per datagram as a ratio of Janus's and of the floor.

    python3 bench/sfu_tables.py FIGURES SECONDS REPEATS JANUS_VERSION FLOOR_US MACHINE
"""
import datetime
import json
import statistics
import sys

path, seconds, repeats, janus_version, floor_us, machine = sys.argv[1:7]
floor_us = float(floor_us)
runs = [json.loads(line) for line in open(path) if line.strip()]

SCENARIOS = {
    "a": "(a) 5 publishers × 20 subscribers, ~1.5 Mbps video (30 fps × 6,000 B) + audio",
    "b": "(b) 1 audio publisher → 500 subscribers",
    "c": "(c) 50 rooms × 4 participants, 15 fps × 1,000 B video + audio",
    "a-simulcast": "(a) with Conclave's simulcast on (q/h/f; Janus not run)",
}
ROWS = [
    ("**server CPU per datagram sent (µs)**", "cpu_us_per_sent", 2),
    ("server CPU per RTP packet participants read (µs)", "cpu_us_per_rtp", 2),
    ("server CPU (% of one core)", "cpu_pct", 0),
    ("datagrams the server sent per second", "sent_per_s", 0),
    ("RTP packets participants read per second", "rtp_per_s", 0),
    ("datagrams dropped at full participant sockets", "socket_drops", 0),
    ("peer connections that never came up", "peers_down", 0),
    ("participants the server cut off", "cut_off", 0),
    ("resident memory after the run (MiB)", "rss_mib", 1),
    ("frames lost (%)", "loss_pct", 3),
    ("jitter, median per track (ms)", "jitter_ms", 2),
    ("send → receive latency p50 (ms)", "latency_p50_ms", 2),
    ("send → receive latency p99 (ms)", "latency_p99_ms", 2),
]
for r in runs:
    r["cpu_pct"] = r["cpu_s"] / r["seconds"] * 100
    r["datagrams_per_s"] = r["datagrams"] / r["seconds"]
    r["rtp_per_s"] = r["rtp_packets"] / r["seconds"]
    r["sent_per_s"] = r["server_sent"] / r["seconds"]
    r.setdefault("peers_down", 0)
    r.setdefault("cut_off", 0)


def of(scenario, server):
    return [r for r in runs if r["scenario"] == scenario and r["server"] == server]


def cell(values, digits):
    if not values:
        return "—"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


out = []
out.append("<!-- sfu-vs-janus:start -->")
out.append("## Conclave's SFU beside Janus (same load, same run)")
out.append("")
out.append(
    f"Measured {datetime.date.today()} on this machine ({machine}) by `bench/sfu-vs-janus.sh {seconds} {repeats}`:"
)
out.append(
    f"Conclave (release build) and Janus {janus_version} (Debian's package, VideoRoom over its HTTP API), "
    f"each started fresh for every run and pinned to core 1, the load (`conclave loadtest media --sfu …`, "
    f"the same headless str0m participants and synthetic Opus/VP8 frames for both) on core 0. "
    f"Runs alternate A B A B; each measures {seconds} s after every peer connection is up and 3 s of warm-up. "
    "Cells are the median of the runs with (min–max). Simulcast is off on both. A Janus participant that "
    "publishes and watches holds two peer connections (publisher and subscriber handles, as Janus's own "
    "clients do); a Conclave participant holds one. \"Datagrams delivered\" are counted at the participants' "
    "sockets; \"datagrams sent\" by the server are the kernel's count of UDP datagrams sent on the machine "
    "(`/proc/net/snmp`) less those the participants sent, the same way for both servers; CPU is the server "
    "process's user + system time. Datagrams dropped at full participant sockets mean the load generator "
    "(one core for every peer) fell behind, not the server."
)
out.append("")
for key, title in SCENARIOS.items():
    conclave, janus = of(key, "conclave"), of(key, "janus")
    if not conclave and not janus:
        continue
    out.append(f"### {title}")
    out.append("")
    out.append(f"| | Conclave (n={len(conclave)}) | Janus (n={len(janus)}) | Conclave ÷ Janus |")
    out.append("|---|---|---|---|")
    for label, field, digits in ROWS:
        c = [r[field] for r in conclave]
        j = [r[field] for r in janus]
        ratio = "—"
        # A ratio to a count near zero says nothing; a small ratio keeps
        # two significant digits rather than rounding to 0.00×.
        if c and j and statistics.median(c) > 0 and statistics.median(j) > 0:
            r = statistics.median(c) / statistics.median(j)
            ratio = f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"
        out.append(f"| {label} | {cell(c, digits)} | {cell(j, digits)} | {ratio} |")
    if conclave:
        cpu = statistics.median(r["cpu_us_per_sent"] for r in conclave)
        line = f"| CPU per datagram sent ÷ the floor ({floor_us:.2f} µs) | {cpu / floor_us:.1f}× |"
        if janus:
            line += f" {statistics.median(r['cpu_us_per_sent'] for r in janus) / floor_us:.1f}× | |"
        else:
            line += " | |"
        out.append(line)
    out.append("")

ramp = [r for r in runs if r["scenario"].startswith("ramp-")]


def usable(r):
    """Loss at most 1 % and p99 latency at most 400 ms (ITU-T G.114)."""
    return r["loss_pct"] <= 1.0 and r["latency_p99_ms"] <= 400


if ramp:
    out.append("### Audio subscribers carried")
    out.append("")
    out.append(
        "One audio publisher, subscribers added in 5-second steps until a step loses more than 1 % of "
        "frames. A step counts as carried when it also delivers within 400 ms at p99 (ITU-T G.114's "
        "limit for conversation: a frame that late is as good as lost)."
    )
    out.append("")
    out.append("| subscribers | Conclave: loss %, p99 ms, CPU % | Janus: loss %, p99 ms, CPU % |")
    out.append("|---|---|---|")
    steps = sorted({int(r["scenario"].split("-")[1]) for r in ramp})
    for n in steps:
        row = [str(n)]
        for server in ("conclave", "janus"):
            rs = of(f"ramp-{n}", server)
            row.append(
                "; ".join(f"{r['loss_pct']:.2f}, {r['latency_p99_ms']:.0f}, {r['cpu_pct']:.0f}" for r in rs) or "—"
            )
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    for server in ("conclave", "janus"):
        mine = sorted((int(r["scenario"].split("-")[1]), r) for r in ramp if r["server"] == server)

        def most(ok):
            carried = 0
            for n, r in mine:
                if not ok(r):
                    break
                carried = n
            return carried

        by_loss = most(lambda r: r["loss_pct"] <= 1.0)
        out.append(
            f"- {server.capitalize()}: **{most(usable)}** subscribers within 1 % loss and 400 ms p99 "
            f"({by_loss} counting loss alone)."
        )
    out.append("")
out.append("<!-- sfu-vs-janus:end -->")
print("\n".join(out))
