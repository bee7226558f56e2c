"""The tables of bench/chat.sh, from `conclave loadtest chat --json` output
(lines starting `figures `): one table per shape of traffic, a row per system
and offered rate, and each system's sustained rate.

    python3 bench/chat_tables.py OUTPUT SECONDS
"""
import datetime
import json
import sys

path, seconds = sys.argv[1:3]
runs = [json.loads(line[len("figures "):]) for line in open(path) if line.startswith("figures ")]

SHAPES = {
    "channel": "One channel: 100 people × 2 devices connected, 20 of them sending",
    "dms": "1,000 direct conversations among 100 people × 2 devices (each person in 20)",
}
SYSTEMS = ["conclave", "synapse", "ejabberd"]
NAMES = {"conclave": "Conclave", "synapse": "Synapse", "ejabberd": "ejabberd"}


def sustained(step):
    """Every offered message accepted at the offered rate (within 2 %), every
    delivery made, and the slowest 1 % within a second."""
    return (
        step["acknowledged"] >= 0.98 * step["offered"]
        and step["accepted_rate"] >= 0.98 * step["rate"]
        and step["delivered_pct"] >= 99.9
        and step["p99_ms"] is not None
        and step["p99_ms"] <= 1000
    )


def fmt(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


out = [
    "<!-- chat:start -->",
    "## Team messaging beside Synapse and ejabberd",
    "",
    f"Measured {datetime.date.today()} on this machine (2 cores), release build, by "
    f"`bench/chat.sh {seconds}`: each offered rate for {seconds} s (open loop, at most 512 sends "
    "waiting), then 3 s for deliveries. *Accepted* is the rate messages were acknowledged at "
    "(durable in PostgreSQL; ejabberd acknowledges nothing, so its messages count once written). "
    "*Delivered* counts every device of the conversation except the sender's; latency runs "
    "from the moment a send began to the moment a device had the message (one clock, one "
    "process). CPU per delivery is the server's, then PostgreSQL's (every `postgres` process). "
    "Conclave's messages are MLS ciphertexts sealed by the senders' devices before each step; "
    "receiving devices do not decrypt (the server is what is measured). A rate is *sustained* "
    "when everything offered was accepted at that rate, ≥ 99.9 % delivered, p99 ≤ 1 s. "
    "A system's higher rates are not tried once a step took or delivered under half of what "
    "was offered (past its ceiling it shows the same ceiling, ever more slowly).",
]
for shape, title in SHAPES.items():
    steps = [r for r in runs if r["shape"] == shape]
    if not steps:
        continue
    out += ["", f"### {title}", "",
            "| system | offered /s | accepted /s | delivered | p50 | p99 | server CPU µs / delivery | + PostgreSQL µs | server RSS | load generator CPU |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    best = {}
    for system in SYSTEMS:
        for s in sorted((r for r in steps if r["system"] == system), key=lambda r: r["rate"]):
            mark = "" if sustained(s) else " ✗"
            if sustained(s):
                best[system] = max(best.get(system, 0), s["rate"])
            out.append(
                f"| {NAMES[system]} | {s['rate']:,}{mark} | {fmt(s['accepted_rate'], 0)} | {fmt(s['delivered_pct'], 2)} % "
                f"| {fmt(s['p50_ms'])} ms | {fmt(s['p99_ms'])} ms | {fmt(s['cpu_us_per_delivery'], 2)} "
                f"| {fmt(s['db_cpu_us_per_delivery'], 2)} | {fmt(s['rss_mib'])} MiB | {fmt(s['load_cpu_pct'], 0)} % |"
            )
    present = [s for s in SYSTEMS if any(r["system"] == s for r in steps)]
    # Past its sustained rate a system still delivers something: the most
    # messages per second it took and delivered to every device, in any step.
    ceiling = {
        s: max(r["accepted_rate"] * r["delivered_pct"] / 100 for r in steps if r["system"] == s) for s in present
    }

    def ratios(figures):
        said = []
        for peer in ("synapse", "ejabberd"):
            if figures.get(peer) and figures.get("conclave"):
                said.append(f"{figures['conclave'] / figures[peer]:.1f}× {NAMES[peer]}'s")
        return f"; Conclave's is {' and '.join(said)}" if said else ""

    line = ", ".join(f"{NAMES[s]} **{best[s]:,}/s**" if s in best else f"{NAMES[s]} none" for s in present)
    most = ", ".join(f"{NAMES[s]} **{ceiling[s]:,.0f}/s**" for s in present)
    out += ["", f"Highest sustained rate (✗: not sustained): {line}{ratios(best)}. "
            f"Most messages taken and delivered per second in any step: {most}{ratios(ceiling)}."]
out.append("<!-- chat:end -->")
print("\n".join(out))
