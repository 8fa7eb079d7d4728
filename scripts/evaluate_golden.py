#!/usr/bin/env python3
"""Writes tests/fixtures/evaluate/golden.json: `evaluate` computed independently.

An oracle that shares no code with the Rust implementation: Python's
fractions.Fraction on the decimal strings as Binance sent them, the trigger
rules of DESIGN.md written out again, and forward returns found by scanning
each pair's list of evaluated books (not by a streaming queue, as the Rust
code does). Config: tests/fixtures/evaluate/config.toml, i.e. qty volume over
the top 10 levels and three triggers:

    imbalance_buy   ratio >= 0.5, edge, cooldown 5 s, up    (threshold shorthand)
    imbalance_sell  ratio <= -0.5, edge, cooldown 5 s, down (threshold shorthand)
    fade_buyers     ratio >= 0.7, level, cooldown 1 s, down (explicit direction)

For horizons 100ms, 1s, 5s, 30s, 60s: per trigger x pair, per trigger and
overall, the alerts, mean and median signed return (bps), hit rate, zero,
stderr, t and overlapping; and the baseline of every evaluated update.

Usage: scripts/evaluate_golden.py   (run from the repository root)
"""
import bisect
import gzip
import json
import math
from fractions import Fraction as F

FILES = [
    "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz",
    "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz",
]
PAIRS = ["BTCUSDT", "ETHUSDT"]
TOP_N = 10
SEC = 10**9
# (name, op, value, emit, cooldown_ns, direction)
TRIGGERS = [
    ("fade_buyers", ">=", F("0.7"), "level", 1 * SEC, -1),
    ("imbalance_buy", ">=", F("0.5"), "edge", 5 * SEC, 1),
    ("imbalance_sell", "<=", F("-0.5"), "edge", 5 * SEC, -1),
]
HORIZONS_MS = [100, 1000, 5000, 30000, 60000]


def holds(op, x, v):
    return {">=": x >= v, ">": x > v, "<=": x <= v, "<": x < v}[op]


def read_books():
    """Per pair: the evaluated books as (recv_ns, mid or None, ratio)."""
    books = {p: [] for p in PAIRS}
    for path in FILES:
        with gzip.open(path, "rt") as f:
            for line in f:
                recv, js = line.split(" ", 1)
                msg = json.loads(js)
                pair = msg["stream"].split("@")[0].upper()
                bids = [(F(p), F(q)) for p, q in msg["data"]["bids"]]
                asks = [(F(p), F(q)) for p, q in msg["data"]["asks"]]
                if not bids and not asks:
                    continue  # empty: not evaluated
                if bids and asks and bids[0][0] >= asks[0][0]:
                    continue  # crossed: not evaluated
                b = sum(q for _, q in bids[:TOP_N])
                a = sum(q for _, q in asks[:TOP_N])
                if a + b == 0:
                    continue
                mid = (bids[0][0] + asks[0][0]) / 2 if bids and asks else None
                books[pair].append((int(recv), mid, F(b - a, b + a)))
    return books


def alerts_of(books):
    """(trigger, pair) -> [(recv_ns, mid)] of every firing, per DESIGN.md."""
    out = {}
    for t, (name, op, value, emit, cooldown, _) in enumerate(TRIGGERS):
        for p, pair in enumerate(PAIRS):
            armed, last = True, None
            fired = []
            for recv, mid, ratio in books[pair]:
                if not holds(op, ratio, value):
                    armed = True
                    continue
                cooled = last is None or recv - last >= cooldown
                if cooled and (emit == "level" or armed):
                    armed, last = False, recv
                    fired.append((recv, mid))
            out[(t, p)] = fired
    return out


def outcome(book_times, book_mids, last_recv, start_recv, start_mid, h_ns, sign):
    """The signed return in bps as a Fraction; 'past' when beyond the data."""
    deadline = start_recv + h_ns
    if deadline > last_recv:
        return "past"
    i = bisect.bisect_right(book_times, deadline) - 1
    while book_mids[i] is None:  # one-sided books are never mid(t+h)
        i -= 1
    return sign * (book_mids[i] - start_mid) / start_mid * 10000


def summary(rs):
    n = len(rs)
    if n == 0:
        return dict(alerts=0, mean_bps=None, median_bps=None, hit_rate=None, zero=0, stderr_bps=None, t_stat=None)
    mean = sum(rs) / n
    s = sorted(rs)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    stderr = t = None
    if n >= 2:
        var = sum((r - mean) ** 2 for r in rs) / (n - 1)
        stderr = math.sqrt(var) / math.sqrt(n)
        t = float(mean) / stderr if stderr > 0 else None
    return dict(
        alerts=n,
        mean_bps=float(mean),
        median_bps=float(median),
        hit_rate=sum(1 for r in rs if r > 0) / n,
        zero=sum(1 for r in rs if r == 0),
        stderr_bps=stderr,
        t_stat=t,
    )


def main():
    books = read_books()
    alerts = alerts_of(books)
    index = {}
    for pair in PAIRS:
        times = [b[0] for b in books[pair]]
        mids = [b[1] for b in books[pair]]
        index[pair] = (times, mids, times[-1])
    results, baseline = [], []
    for h_ms in HORIZONS_MS:
        h = h_ms * 10**6
        overall, overall_overlap, overall_past = [], 0, 0
        for t, trig in enumerate(TRIGGERS):
            per_t, per_t_overlap, per_t_past = [], 0, 0
            for p, pair in enumerate(PAIRS):
                times, mids, last = index[pair]
                rs, starts, past = [], [], 0
                for recv, mid in alerts[(t, p)]:
                    r = outcome(times, mids, last, recv, mid, h, trig[5])
                    if r == "past":
                        past += 1
                    else:
                        rs.append(r)
                        starts.append(recv)
                overlap = sum(1 for a, b in zip(starts, starts[1:]) if b - a < h)
                results.append(dict(trigger=trig[0], pair=pair, horizon_ms=h_ms, overlapping=overlap, excluded=past, **summary(rs)))
                per_t += rs
                per_t_overlap += overlap
                per_t_past += past
            results.append(dict(trigger=trig[0], pair=None, horizon_ms=h_ms, overlapping=per_t_overlap, excluded=per_t_past, **summary(per_t)))
            overall += per_t
            overall_overlap += per_t_overlap
            overall_past += per_t_past
        results.append(dict(trigger=None, pair=None, horizon_ms=h_ms, overlapping=overall_overlap, excluded=overall_past, **summary(overall)))
        for pair in PAIRS:
            times, mids, last = index[pair]
            rs, past = [], 0
            for recv, mid, _ in books[pair]:
                if mid is None:
                    continue
                r = outcome(times, mids, last, recv, mid, h, 1)
                if r == "past":
                    past += 1
                else:
                    rs.append(r)
            s = summary(rs)
            s["updates"] = s.pop("alerts")
            baseline.append(dict(pair=pair, horizon_ms=h_ms, excluded=past, **s))
    with open("tests/fixtures/evaluate/golden.json", "w") as f:
        json.dump({"results": results, "baseline": baseline}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
