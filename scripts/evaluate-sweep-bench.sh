#!/usr/bin/env bash
# What a threshold sweep costs against one evaluation: the release binary on
# the real BTCUSDT + ETHUSDT depth10 recordings, repeated COPIES times back to
# back (timestamps shifted, so each pair's time runs on), evaluated once as
# configured, once with an 11-value `--sweep value=0.1:0.6:0.05` and once with
# that times `--sweep top_n=5,10` (two engines over one decode). Prints the
# best wall time of RUNS runs of each and their ratio.
#
#   scripts/evaluate-sweep-bench.sh            # 20 copies (~3.6 h of data, 260k frames), best of 5
#   COPIES=50 RUNS=3 scripts/evaluate-sweep-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COPIES=${COPIES:-20}
RUNS=${RUNS:-5}
BIN=target/release/imbalance-monitor
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$COPIES" <<'PY'
import gzip, sys
work, copies = sys.argv[1], int(sys.argv[2])
for name in ["btcusdt", "ethusdt"]:
    with gzip.open(f"tests/fixtures/{name}_depth10_100ms_20240808-09.txt.gz", "rt") as f:
        lines = [l.split(" ", 1) for l in f]
    span = int(lines[-1][0]) - int(lines[0][0]) + 100_000_000
    with open(f"{work}/{name}.txt", "w") as out:
        for c in range(copies):
            for t, js in lines:
                out.write(f"{int(t) + c * span} {js}")
PY
cat > "$work/config.toml" <<'TOML'
pairs = ["BTCUSDT", "ETHUSDT"]
threshold = 0.5
cooldown_sec = 5
[metrics]
volume_mode = "qty"
TOML

best() { # best wall seconds of RUNS runs of the command
    local best=""
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s.%N)
        "$@" > /dev/null
        e=$(date +%s.%N)
        best=$(python3 -c "import sys; a=float(sys.argv[1]); b=sys.argv[2]; print(a if not b else min(a, float(b)))" "$(echo "$e - $s" | bc)" "$best")
    done
    echo "$best"
}

files=("$work/btcusdt.txt" "$work/ethusdt.txt")
frames=$(cat "${files[@]}" | wc -l)
one=$(best "$BIN" evaluate -c "$work/config.toml" "${files[@]}")
sweep=$(best "$BIN" evaluate -c "$work/config.toml" --sweep value=0.1:0.6:0.05 "${files[@]}")
top_n=$(best "$BIN" evaluate -c "$work/config.toml" --sweep top_n=5,10 --sweep value=0.1:0.6:0.05 "${files[@]}")
replay=$(best "$BIN" replay -c "$work/config.toml" --journal "$work/j.jsonl" "${files[@]}")
python3 - "$frames" "$one" "$sweep" "$replay" "$top_n" <<'PY'
import sys
frames, one, sweep, replay, top_n = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"frames: {frames}")
print(f"replay (no outcomes):            {replay:.3f} s")
print(f"evaluate, as configured:         {one:.3f} s  ({frames / one:,.0f} frames/s)")
print(f"evaluate --sweep value (11 var.): {sweep:.3f} s  = {sweep / one:.2f}x one evaluation")
print(f"  and top_n=5,10 (22 var., 2 engines): {top_n:.3f} s  = {top_n / one:.2f}x one evaluation")
PY
