#!/usr/bin/env bash
# Low-latency host settings for imbalance-monitor's hot core.
#
# Dry run by default: prints what it finds and what it would change. With
# --apply (as root) it changes only runtime settings (CPU governor, IRQ
# affinity, transparent huge pages); kernel boot parameters (isolcpus,
# nohz_full, rcu_nocbs) are printed as a hint, never written.
#
#   scripts/tune-host.sh --hot-core 2            # report
#   sudo scripts/tune-host.sh --hot-core 2 --apply
set -euo pipefail

hot_core=""
apply=0
usage() {
  echo "usage: $0 --hot-core N [--apply]" >&2
  echo "  --hot-core N  the core in [runtime] hot_core (default: read from config/config.toml)" >&2
  echo "  --apply       change runtime settings (root); without it nothing is changed" >&2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --hot-core) hot_core="${2:-}"; shift 2 ;;
    --apply) apply=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done
if [ -z "$hot_core" ] && [ -f config/config.toml ]; then
  hot_core=$(sed -n 's/^[[:space:]]*hot_core[[:space:]]*=[[:space:]]*\([0-9]\+\).*/\1/p' config/config.toml | head -n1)
fi
if ! [[ "$hot_core" =~ ^[0-9]+$ ]]; then
  echo "error: no hot core given; pass --hot-core N (the [runtime] hot_core of your config)" >&2
  exit 2
fi
ncpu=$(nproc --all)
if [ "$hot_core" -ge "$ncpu" ]; then
  echo "error: core $hot_core does not exist (this host has cores 0-$((ncpu - 1)))" >&2
  exit 2
fi
if [ "$apply" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "error: --apply needs root" >&2
  exit 1
fi

changes=0
# covers LIST CORE: whether a CPU list such as "0-3,5" includes CORE.
covers() {
  awk -v c="$2" -F, '{for(i=1;i<=NF;i++){n=split($i,r,"-"); lo=r[1]+0; hi=(n>1?r[2]:r[1])+0; if(c>=lo && c<=hi){f=1}}} END{exit f?0:1}' <<<"$1"
}
say() { printf '%-28s %s\n' "$1" "$2"; }
# readable FILE: print a note and fail when a setting cannot be read here.
readable() {
  if [ -r "$1" ]; then return 0; fi
  say "$2" "cannot read $1 (not exposed on this host/container); skipped"
  return 1
}
# change FILE VALUE LABEL: write VALUE with --apply, otherwise say what would change.
change() {
  changes=$((changes + 1))
  if [ "$apply" = 1 ]; then
    if printf '%s' "$2" > "$1" 2>/dev/null; then say "$3" "set $1 = $2"; else say "$3" "FAILED to write $2 to $1"; fi
  else
    say "$3" "would set $1 = $2"
  fi
}

echo "imbalance-monitor host tuning — hot core $hot_core of $ncpu ($([ "$apply" = 1 ] && echo apply || echo dry run))"
echo

# 1. CPU frequency governor: 'performance' avoids ramp-up latency on the hot core.
gov="/sys/devices/system/cpu/cpu$hot_core/cpufreq/scaling_governor"
if readable "$gov" "cpu governor"; then
  cur=$(cat "$gov")
  if [ "$cur" = performance ]; then say "cpu governor" "performance (ok)"; else say "cpu governor" "is $cur"; change "$gov" performance "cpu governor"; fi
fi

# 2. Kernel isolation: keep the scheduler, timer ticks and RCU callbacks off the hot core.
if readable /proc/cmdline "kernel cmdline"; then
  cmdline=$(cat /proc/cmdline)
  for p in isolcpus nohz_full rcu_nocbs; do
    # The value's CPU list is its last comma-free-of-flags part (isolcpus=domain,managed_irq,2-3).
    val=$(grep -Eo "(^| )$p=[^ ]*" <<<"$cmdline" | head -n1 | sed "s/^ *$p=//" || true)
    list=$(tr ',' '\n' <<<"$val" | grep -E '^[0-9]' | paste -sd, - || true)
    if [ -n "$list" ] && covers "$list" "$hot_core"; then
      say "$p" "$val (covers core $hot_core, ok)"
    elif [ -n "$val" ]; then
      say "$p" "$val does not cover core $hot_core; add it on the kernel command line and reboot — never done by this script"
    else
      say "$p" "not set; add '$p=$hot_core' to the kernel command line (GRUB_CMDLINE_LINUX) and reboot — never done by this script"
    fi
  done
fi

# 3. IRQ affinity: steer device interrupts away from the hot core.
others=$(seq 0 $((ncpu - 1)) | grep -vx "$hot_core" | paste -sd, -)
if [ -z "$others" ]; then
  say "irq affinity" "single-core host; nothing to move"
elif readable /proc/irq "irq affinity"; then
  moved=0
  for f in /proc/irq/*/smp_affinity_list; do
    [ -r "$f" ] || continue
    if covers "$(cat "$f")" "$hot_core"; then
      moved=$((moved + 1))
      change "$f" "$others" "irq $(basename "$(dirname "$f")")"
    fi
  done
  [ "$moved" = 0 ] && say "irq affinity" "no IRQ targets core $hot_core (ok)"
  if pgrep -x irqbalance >/dev/null 2>&1; then
    say "irqbalance" "running: it will undo IRQ affinity; stop it or add --banirq/IRQBALANCE_BANNED_CPUS=$hot_core"
  fi
fi

# 4. Transparent huge pages: background compaction causes latency spikes.
thp=/sys/kernel/mm/transparent_hugepage/enabled
if readable "$thp" "transparent hugepages"; then
  cur=$(grep -o '\[[a-z]*\]' "$thp" | tr -d '[]')
  if [ "$cur" = never ] || [ "$cur" = madvise ]; then say "transparent hugepages" "$cur (ok)"; else say "transparent hugepages" "is $cur"; change "$thp" madvise "transparent hugepages"; fi
fi

echo
if [ "$apply" = 1 ]; then
  echo "Applied $changes runtime change(s); they last until reboot."
else
  echo "$changes change(s) suggested; nothing was changed. Re-run with --apply as root to apply the runtime ones."
fi
echo "Then set [runtime] hot_core = $hot_core and busy_poll = true in the config, and CPUAffinity in the systemd unit."
