#!/usr/bin/env python3
"""Writes tests/fixtures/metrics_golden.txt: exact metric values for real frames.

An oracle independent of the Rust code: Python's fractions.Fraction on the
decimal strings as Binance sent them. For the first N frames of each
recording, one line per frame:

    <file> <index> <last_update_id> <metric>=<num>/<den> ...

Metrics (top_n 10 unless named): imbalance_qty, imbalance_notional,
imbalance_notional_top5, weighted_qty (decay 0.5, weights round-half-up of
0.5^i at scale 1e9, as the Rust code defines them), microprice_offset_bps,
spread_bps, ofi (window 10; `-` until the window is full).

Usage: scripts/golden_metrics.py [N]   (run from the repository root)
"""
import gzip
import json
import math
import sys
from fractions import Fraction as F

FILES = [
    "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz",
    "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz",
]
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
WEIGHTS = [math.floor(0.5**i * 1e9 + 0.5) for i in range(20)]
OFI_WINDOW = 10


def ratio(b, a):
    return None if b + a == 0 else F(b - a, b + a)


def fmt(x):
    return "-" if x is None else f"{x.numerator}/{x.denominator}"


def main():
    out = []
    for path in FILES:
        prev = None
        window = []
        with gzip.open(path, "rt") as f:
            for idx, line in enumerate(f):
                if idx >= N:
                    break
                _, js = line.split(" ", 1)
                data = json.loads(js)["data"]
                bids = [(F(p), F(q)) for p, q in data["bids"]]
                asks = [(F(p), F(q)) for p, q in data["asks"]]
                m = {}
                m["imbalance_qty"] = ratio(sum(q for _, q in bids[:10]), sum(q for _, q in asks[:10]))
                m["imbalance_notional"] = ratio(sum(p * q for p, q in bids[:10]), sum(p * q for p, q in asks[:10]))
                m["imbalance_notional_top5"] = ratio(sum(p * q for p, q in bids[:5]), sum(p * q for p, q in asks[:5]))
                m["weighted_qty"] = ratio(
                    sum(w * q for w, (_, q) in zip(WEIGHTS, bids[:10])),
                    sum(w * q for w, (_, q) in zip(WEIGHTS, asks[:10])),
                )
                (bp, bq), (ap, aq) = bids[0], asks[0]
                mid = (bp + ap) / 2
                micro = (bp * aq + ap * bq) / (bq + aq)
                m["microprice_offset_bps"] = (micro - mid) / mid * 10000
                m["spread_bps"] = (ap - bp) / mid * 10000
                if prev is not None:
                    (pbp, pbq), (pap, paq) = prev
                    e = (bq if bp >= pbp else 0) - (pbq if bp <= pbp else 0) - (aq if ap <= pap else 0) + (paq if ap >= pap else 0)
                    window.append((e, bq + aq))
                    window = window[-OFI_WINDOW:]
                prev = ((bp, bq), (ap, aq))
                if len(window) == OFI_WINDOW:
                    mean_depth = sum(d for _, d in window) / (2 * OFI_WINDOW)
                    m["ofi"] = sum(e for e, _ in window) / mean_depth
                else:
                    m["ofi"] = None
                fields = " ".join(f"{k}={fmt(v)}" for k, v in m.items())
                out.append(f"{path.split('/')[-1]} {idx} {data['lastUpdateId']} {fields}")
    with open("tests/fixtures/metrics_golden.txt", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
