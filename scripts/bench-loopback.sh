#!/usr/bin/env bash
# Loopback latency/throughput benchmark: the release binary against its own
# TLS simulator replaying the real BTCUSDT depth10 recording, at fixed offered
# rates and at full speed. Prints, per rate: achieved frames/s, the client's
# CPU use, wire->decision p50/p99/p99.9 (poll wake-up to trigger decision),
# and its split into socket_read (inside the kernel's recv) and in_process.
#
#   scripts/bench-loopback.sh                 # 1k, 10k, 100k frames/s and max, 10 s each
#   DURATION=30 RATES="10000" scripts/bench-loopback.sh
#   BUSY_POLL=false scripts/bench-loopback.sh # blocking poll instead of busy polling
#   HOT_CORE=1 scripts/bench-loopback.sh      # pin the hot thread (default: the last core)
#   TLS=false scripts/bench-loopback.sh       # plain ws://, to see what TLS costs
#   HISTORY=sqlite scripts/bench-loopback.sh  # with [history] into a SQLite file (HISTORY_SAMPLE_MS, default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RATES=${RATES:-"1000 10000 100000 max"}
BUSY_POLL=${BUSY_POLL:-true}
TLS=${TLS:-true}
HISTORY=${HISTORY:-off}
HISTORY_SAMPLE_MS=${HISTORY_SAMPLE_MS:-1000}
ncpu=$(nproc)
HOT_CORE=${HOT_CORE:-$((ncpu - 1))}
# The simulator runs on the other cores, so it never preempts the hot thread.
SIM_CORES=${SIM_CORES:-$(seq 0 $((ncpu - 1)) | grep -vx "$HOT_CORE" | paste -sd, -)}
REC=tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz
BIN=target/release/imbalance-monitor

cargo build --release --quiet
work=$(mktemp -d)
if [ "$TLS" = true ]; then tls_args=(--tls --ca-out "$work/ca.pem"); else tls_args=(); fi
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "imbalance-monitor loopback benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
echo "host: $(uname -srm), $ncpu cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo "client: busy_poll=$BUSY_POLL hot_core=$HOT_CORE; TLS=$TLS; history=$HISTORY; $DURATION s per rate; simulator on the same host"
echo
printf '| %-8s | %-17s | %-10s | %-18s | %-9s | %-9s | %-19s | %-18s |\n' "offered" "achieved frames/s" "client CPU" "wire->decision p50" "p99" "p99.9" "socket_read p50/p99" "in_process p50/p99"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "----------" "-------------------" "------------" "--------------------" "-----------" "-----------" "---------------------" "--------------------"

for rate in $RATES; do
  taskset -c "$SIM_CORES" "$BIN" simulate ${tls_args[@]+"${tls_args[@]}"} --replay "$REC" --loop --rate "$rate" >"$work/sim.out" 2>"$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 100); do [ -s "$work/sim.out" ] && break; sleep 0.05; done
  url=$(head -n1 "$work/sim.out" | awk '{print $2}')
  cat >"$work/bench.toml" <<TOML
pairs = ["BTCUSDT"]
[binance]
ws_url = "$url/stream"
$([ "$TLS" = true ] && echo "ca_file = \"$work/ca.pem\"")
[[triggers]]
name = "imbalance_buy_strong"
op = ">="
value = 0.25
cooldown_sec = 10
[[triggers]]
name = "imbalance_sell_strong"
op = "<="
value = -0.25
cooldown_sec = 10
[alerts]
journal = "$work/alerts.jsonl"
[runtime]
busy_poll = $BUSY_POLL
hot_core = $HOT_CORE
stats_interval_sec = 3600
[log]
file = "$work/bench.log"
$([ "$HISTORY" = sqlite ] && printf '[history]\npath = "%s"\nsample_ms = %s\n' "$work/history.sqlite" "$HISTORY_SAMPLE_MS")
TOML
  "$BIN" run -c "$work/bench.toml" >"$work/run.out" 2>&1 &
  run_pid=$!
  sleep 1 # connect and warm up
  c0=$(cpu_ticks "$run_pid"); t0=$(date +%s.%N)
  sleep "$DURATION"
  c1=$(cpu_ticks "$run_pid"); t1=$(date +%s.%N)
  kill -TERM "$run_pid"; wait "$run_pid" || true
  kill -TERM "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
  cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" 'BEGIN{printf "%.0f%%", 100*(b-a)/hz/(t1-t0)}')
  fps=$(grep -m1 'SUMMARY | [0-9]*s | frames=' "$work/run.out" | sed 's/.*(\([0-9.]*\) frames\/s).*/\1/')
  q() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$(grep -m1 "SUMMARY | $1 " "$work/run.out" || true)"; }
  p50=$(q wire_to_decision p50); p99=$(q wire_to_decision p99); p999=$(q wire_to_decision 'p99\.9')
  sr="$(q socket_read p50)/$(q socket_read p99)"; ip="$(q in_process p50)/$(q in_process p99)"
  printf '| %-8s | %-17s | %-10s | %-18s | %-9s | %-9s | %-19s | %-18s |\n' "$rate" "$fps" "$cpu" "${p50:--}" "${p99:--}" "${p999:--}" "$sr" "$ip"
  if [ "$HISTORY" = sqlite ]; then
    rows=$(( $("$BIN" history -c "$work/bench.toml" --csv | wc -l) - 1 ))
    dropped=$(grep -m1 -o 'metrics_dropped=[0-9]*' "$work/run.out" | tail -n1 || true)
    echo "  history: $rows sample rows stored; hand-off ${dropped:-metrics_dropped=?}; $(grep -m1 -o 'HISTORY | stored.*' "$work/run.out" || true)"
    rm -f "$work"/history.sqlite*
  fi
done
echo
echo "achieved = frames evaluated / run time (includes the 1 s warm-up); CPU = the client process over the measured $DURATION s."
echo "socket_read = time in the kernel's recv between the poll and the decision; in_process = wire->decision minus socket_read, per frame."
