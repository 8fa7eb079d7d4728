#!/usr/bin/env bash
# Compiles and runs scripts/loopback-floor.c: the kernel's own cost per
# message on this host (a trivial syscall; a loopback TCP recv), the floor
# under wire->decision's socket_read stage. Needs a C compiler (cc).
set -euo pipefail
cd "$(dirname "$0")"
bin=$(mktemp)
trap 'rm -f "$bin"' EXIT
cc -O2 -o "$bin" loopback-floor.c
core=$(($(nproc) - 1))
echo "host: $(uname -srm), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); pinned to core $core"
taskset -c "$core" "$bin"
