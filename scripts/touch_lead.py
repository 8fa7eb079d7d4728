#!/usr/bin/env python3
"""How much earlier a touch trigger fires with the bookTicker overlay.

Replays the real diff recordings through the release binary twice per symbol,
`binance.book = "diff"` with `book_ticker = false` (diffs alone) and `true`
(diffs + the touch overlay), `metrics.top_n = 1`, edge triggers with cooldown
0, and pairs each episode of the diff-only run with the episode of the overlay
run that announced the same crossing. Prints the Markdown tables that
docs/touch-lead.md holds. Standard library only.

Episodes. Every watched condition C has a complement trigger (the negated
comparison, also `emit = "edge"`), so each run's journal holds when C became
true (entry) and when it became false again (exit), both at the receive time
of the update that did it. A diff-only episode i is [entry_i, exit_i).

Pairing. Diff-only episode i is paired with the FIRST overlay entry of C whose
receive time lies in (exit_{i-1}, entry_i]: after the diff book last left C,
at or before the diff book re-entered it. Its lead is entry_i minus that
overlay entry (>= 0 by construction). The LATEST overlay entry in the same
window is the conservative variant (the overlay may flicker in and out of C
inside one 100 ms batch); both are reported. A diff-only episode with no
overlay entry in its window has no counterpart (the overlay was already in C
across the diff book's exit and re-entry, or a newer ticker had left C before
the diff book reached it). Overlay entries that no diff-only episode took are
overlay-only episodes: touch crossings that reverted before a diff event
showed them.

Usage: scripts/touch_lead.py [--bin target/release/imbalance-monitor]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

FIXTURES = "tests/fixtures"
DAYS = ("20240808", "20240809")

# (name, metric, op, value per symbol). The microprice thresholds are 0.6 of
# the half spread at one tick (0.01), where microprice_offset_bps equals
# imbalance_ratio (qty) times the half spread in bps: the same touch
# imbalance, seen through the mid.
CONDITIONS = (
    ("ratio_buy", "imbalance_ratio", ">=", {"BTCUSDT": 0.6, "ETHUSDT": 0.6}),
    ("ratio_sell", "imbalance_ratio", "<=", {"BTCUSDT": -0.6, "ETHUSDT": -0.6}),
    ("micro_up", "microprice_offset_bps", ">=", {"BTCUSDT": 0.0005, "ETHUSDT": 0.011}),
    ("micro_down", "microprice_offset_bps", "<=", {"BTCUSDT": -0.0005, "ETHUSDT": -0.011}),
)
NEGATE = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


def config(symbol, book_ticker):
    lines = [
        f'pairs = ["{symbol}"]',
        "[binance]",
        'book = "diff"',
        f"book_ticker = {'true' if book_ticker else 'false'}",
        "[metrics]",
        "top_n = 1",
        'volume_mode = "qty"',
    ]
    for name, metric, op, values in CONDITIONS:
        for trig, o in ((name, op), (name + "_off", NEGATE[op])):
            lines += [
                "[[triggers]]",
                f'name = "{trig}"',
                f'metric = "{metric}"',
                f'op = "{o}"',
                f"value = {values[symbol]}",
                'emit = "edge"',
                "cooldown_sec = 0",
            ]
    return "\n".join(lines) + "\n"


def replay(binary, work, symbol, book_ticker):
    """Runs `replay`; returns {trigger: [recv_ns, ...]} in journal order."""
    tag = f"{symbol.lower()}_{'overlay' if book_ticker else 'diff'}"
    cfg = os.path.join(work, tag + ".toml")
    journal = os.path.join(work, tag + ".jsonl")
    with open(cfg, "w") as f:
        f.write(config(symbol, book_ticker))
    files = [os.path.join(FIXTURES, f"{symbol.lower()}_{d}.gz") for d in DAYS]
    out = subprocess.run(
        [binary, "replay", "-c", cfg, "--journal", journal, *files], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"replay {tag} failed ({out.returncode}):\n{out.stderr}")
    by_trigger = {}
    with open(journal) as f:
        for line in f:
            a = json.loads(line)
            by_trigger.setdefault(a["trigger"], []).append(a["recv_ns"])
    return by_trigger


def episodes(entries, exits):
    """[(entry, exit or None)], each entry with the first exit after it."""
    out, k = [], 0
    for e in entries:
        while k < len(exits) and exits[k] <= e:
            k += 1
        out.append((e, exits[k] if k < len(exits) else None))
    return out


def percentile(sorted_values, p):
    """Nearest-rank percentile (the value at rank ceil(p/100 * n))."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-p * len(sorted_values) // 100))
    return sorted_values[int(rank) - 1]


def pair(diff_eps, overlay_entries):
    first, latest, unpaired, taken = [], [], 0, set()
    prev_exit = None
    k = 0
    for entry, exit_ in diff_eps:
        while k < len(overlay_entries) and prev_exit is not None and overlay_entries[k] <= prev_exit:
            k += 1
        j = k
        window = []
        while j < len(overlay_entries) and overlay_entries[j] <= entry:
            window.append(j)
            j += 1
        if window:
            first.append((entry - overlay_entries[window[0]]) / 1e6)
            latest.append((entry - overlay_entries[window[-1]]) / 1e6)
            taken.add(window[0])
        else:
            unpaired += 1
        k = j
        prev_exit = exit_
        if exit_ is None:
            break
    return first, latest, unpaired, len(overlay_entries) - len(taken)


def fmt(v):
    return "n/a" if v != v else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/imbalance-monitor")
    args = ap.parse_args()
    rows, all_first, all_latest = [], [], []
    with tempfile.TemporaryDirectory(prefix="touch-lead-") as work:
        for symbol in ("BTCUSDT", "ETHUSDT"):
            diff = replay(args.bin, work, symbol, False)
            over = replay(args.bin, work, symbol, True)
            for name, metric, op, values in CONDITIONS:
                d_eps = episodes(diff.get(name, []), diff.get(name + "_off", []))
                o_entries = over.get(name, [])
                first, latest, unpaired, overlay_only = pair(d_eps, o_entries)
                all_first += first
                all_latest += latest
                first.sort()
                latest.sort()
                rows.append(
                    (
                        symbol,
                        f"`{metric} {op} {values[symbol]}`",
                        len(d_eps),
                        len(o_entries),
                        len(first),
                        percentile(first, 50),
                        percentile(first, 90),
                        percentile(latest, 50),
                        percentile(latest, 90),
                        unpaired,
                        overlay_only,
                    )
                )
    print(
        "| pair | condition | diff-only episodes | overlay episodes | paired | "
        "lead median ms | lead p90 ms | latest-overlay median ms | latest-overlay p90 ms | "
        "diff-only unpaired | overlay-only |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {fmt(r[5])} | {fmt(r[6])} | "
            f"{fmt(r[7])} | {fmt(r[8])} | {r[9]} | {r[10]} |"
        )
    all_first.sort()
    all_latest.sort()
    print()
    print(
        f"All pairs: {len(all_first)} paired episodes; lead median {fmt(percentile(all_first, 50))} ms, "
        f"p90 {fmt(percentile(all_first, 90))} ms (latest overlay entry: median "
        f"{fmt(percentile(all_latest, 50))} ms, p90 {fmt(percentile(all_latest, 90))} ms); "
        f"{sum(1 for x in all_first if x == 0)} with lead 0."
    )


if __name__ == "__main__":
    main()
