#!/usr/bin/env bash
# The benchmarks of issue 19 in one command, Understudy and keepalived measured in the same run
# with the same harness (docs/benchmarks-method.md). Needs root (network namespaces) on Debian
# with the Swift toolchain.
#
#   scripts/bench-issue19.sh [--out DIR] [--skip-build] [--binary PATH]
#
# It installs what it needs when missing (keepalived, iproute2, nftables, iputils-ping,
# iputils-arping, python3), builds the release binary with the flags of
# scripts/package-deb.sh (--skip-build: use .build/release/understudy as it is; --binary:
# another one), then runs, each in a fresh lab that it removes:
#   1. unplanned failover, fast profile (20 ms / 100 ms): link down and kill -9, RUNS each;
#   2. the same for keepalived, advert_int 0.1 s and 0.01 s (VRRPv3, VRRP=multicast|unicast);
#   3. idle footprint per daemon (CPU s/min over IDLE seconds; RSS, PSS, a breakdown per
#      mapping): Understudy fast, recommended (1 s / 5 s) and built-in default (3 s / 90 s)
#      with 2 servers and 10 groups; keepalived 0.1 s and 0.01 s with 10 VRRP instances and
#      with 1;
#   4. failover time against cluster size, recommended profile, link down of the holder:
#      SIZES servers (default 2 4 8 16 32; sizes the memory cannot hold are skipped), SIZE_RUNS
#      each, SIZE_SETTLE seconds between runs (a survivor that rejoined recently waits out its
#      rejoin window before it confirms anyone down: 12 s on this profile);
#   5. with MEMORY_VARIANTS=1: scripts/bench/memory-variants.sh (release link flags against
#      idle memory; relinks .build/release, so it runs last).
# Everything goes to the results folder it prints (default .build/bench-issue19/<UTC time>):
# machine.txt (date, commit, cores, CPU, kernel, load, steal over the whole run), commands.txt
# (every command exactly as run), one JSON file per measurement (raw runs), its log, the
# keepalived configurations used (*.keepalived-nodeI.conf) and summary.md (the tables).
#
# Shorter runs for a quick check: RUNS=3 SIZE_RUNS=1 IDLE=15 SIZES="2 4". Skip parts with
# SKIP_FAILOVER=1, SKIP_KEEPALIVED=1, SKIP_FOOTPRINT=1, SKIP_SIZES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=""
BUILD=1
BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=${2:?--out needs a folder}; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        --binary) BIN=${2:?--binary needs a path}; BUILD=0; shift 2 ;;
        -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "bench-issue19.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

RUNS=${RUNS:-20}
SIZE_RUNS=${SIZE_RUNS:-10}
IDLE=${IDLE:-60}
SIZES=${SIZES:-"2 4 8 16 32"}
SIZE_SETTLE=${SIZE_SETTLE:-15}
VRRP=${VRRP:-multicast}
for pair in "RUNS:$RUNS" "SIZE_RUNS:$SIZE_RUNS" "IDLE:$IDLE" "SIZE_SETTLE:$SIZE_SETTLE"; do
    case "${pair#*:}" in '' | *[!0-9]*) echo "bench-issue19.sh: ${pair%%:*} must be a whole number" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 1000 ] || { echo "bench-issue19.sh: RUNS must be 1-1000" >&2; exit 2; }
[ "$IDLE" -ge 1 ] && [ "$IDLE" -le 3600 ] || { echo "bench-issue19.sh: IDLE must be 1-3600" >&2; exit 2; }
for size in $SIZES; do
    case "$size" in '' | *[!0-9]*) echo "bench-issue19.sh: SIZES holds whole numbers (2-32)" >&2; exit 2 ;; esac
    [ "$size" -ge 2 ] && [ "$size" -le 32 ] || { echo "bench-issue19.sh: a size must be 2-32, not $size" >&2; exit 2; }
done
case "$VRRP" in multicast | unicast) ;; *) echo "bench-issue19.sh: VRRP must be multicast or unicast" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "bench-issue19.sh: needs root (network namespaces)" >&2; exit 2; }

log() { printf '[bench19 %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# ---------------------------------------------------------------- what it needs
need=()
for pkg in keepalived iproute2 nftables iputils-ping iputils-arping python3 procps; do
    dpkg -s "$pkg" > /dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# ---------------------------------------------------------------- build
# The release flags of scripts/package-deb.sh (the binary the package ships).
RELEASE_FLAGS=(-c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now --product understudy)
if [ "$BUILD" = 1 ]; then
    command -v swift > /dev/null || { echo "bench-issue19.sh: the Swift toolchain (swift) is not on PATH" >&2; exit 2; }
    log "building: swift build ${RELEASE_FLAGS[*]}"
    swift build "${RELEASE_FLAGS[@]}" >&2
fi
GIVEN_BINARY=$BIN
[ -n "$BIN" ] || BIN="$ROOT/.build/release/understudy"
[ -x "$BIN" ] || { echo "bench-issue19.sh: $BIN is not an executable" >&2; exit 2; }
BIN=$(readlink -f "$BIN")

OUT=${OUT:-"$ROOT/.build/bench-issue19/$(date -u +%Y%m%dT%H%M%SZ)"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
COMMANDS="$OUT/commands.txt"
: > "$COMMANDS"

# Every lab this script makes has one of these prefixes (lab commands name them after the
# subnet): on exit, also after an error or Ctrl-C, what is left of them is removed by pid.
PREFIXES=(bench21 bench22 bench23 bench24 foot25)
cleanup() {
    for prefix in "${PREFIXES[@]}"; do "$BIN" lab down --prefix "$prefix" > /dev/null 2>&1 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stat_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9 }' /proc/stat; }
read -r TOTAL0 STEAL0 < <(stat_ticks)
{
    echo "date (UTC):     $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "commit:         $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "binary:         $BIN ($(stat -c %s "$BIN") bytes, sha256 $(sha256sum "$BIN" | cut -c1-16)…)"
    if [ -n "$GIVEN_BINARY" ]; then
        echo "build flags:    unknown (--binary: not built by this run)"
    else
        echo "build flags:    ${RELEASE_FLAGS[*]}$([ "$BUILD" = 0 ] && echo ' (--skip-build: not rebuilt by this run)')"
    fi
    echo "cores:          $(nproc)"
    echo "CPU:            $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory:         $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel:         $(uname -r)"
    echo "OS:             $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "swift:          $(swift --version 2>/dev/null | head -1 || echo unknown)"
    echo "keepalived:     $(keepalived --version 2>&1 | head -1)"
    echo "load at start:  $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings:       RUNS=$RUNS SIZE_RUNS=$SIZE_RUNS IDLE=$IDLE SIZES=\"$SIZES\" SIZE_SETTLE=$SIZE_SETTLE VRRP=$VRRP"
} > "$OUT/machine.txt"
log "results: $OUT"

leftovers() { # the lab prefixes must be gone after each step
    local left
    left=$(ip netns list | awk '{ print $1 }' | grep -E '^(bench2[1-4]|foot25)-' || true)
    if [ -n "$left" ]; then
        log "WARNING: namespaces left after $1: $left (removing)"
        echo "leftover after $1: $left" >> "$OUT/machine.txt"
        cleanup
    fi
}

# run NAME ARGS...: one measurement, its command recorded, its output in NAME.log, its JSON in
# NAME.json. A failed measurement is reported and the run goes on with the next.
FAILED=()
run() {
    local name=$1
    shift
    local cmd=("$BIN" lab "$@" --json "$OUT/$name.json")
    echo "${cmd[*]}" >> "$COMMANDS"
    log "$name: ${cmd[*]#"$BIN" }"
    if "${cmd[@]}" > "$OUT/$name.log" 2>&1; then
        grep -E '^(RESULT|FOOTPRINT)' "$OUT/$name.log" | sed 's/^/    /' || true
    else
        log "$name FAILED (exit $?): see $OUT/$name.log"
        tail -5 "$OUT/$name.log" | sed 's/^/    /'
        FAILED+=("$name")
    fi
    leftovers "$name"
}

FAST=(--interval 20ms --timeout-ms 100 --ping-timeout 30ms --probe-wait 20ms)
RECOMMENDED=(--interval 1s --timeout-ms 5000 --ping-timeout 1s --probe-wait 200ms)
BUILTIN=(--interval 3s --timeout-ms 90000 --ping-timeout 1s --probe-wait 200ms)

# ---------------------------------------------------------------- 1, 2: failover
if [ "${SKIP_FAILOVER:-0}" != 1 ]; then
    run failover-understudy-fast failover-bench "${FAST[@]}" --runs "$RUNS" --settle 2 --subnet 21
fi
if [ "${SKIP_KEEPALIVED:-0}" != 1 ]; then
    run failover-keepalived-0.1 failover-bench --competitor keepalived --advert 0.1 --vrrp "$VRRP" --runs "$RUNS" --settle 2 --subnet 22
    run failover-keepalived-0.01 failover-bench --competitor keepalived --advert 0.01 --vrrp "$VRRP" --runs "$RUNS" --settle 2 --subnet 22
fi

# ---------------------------------------------------------------- 3: idle footprint
if [ "${SKIP_FOOTPRINT:-0}" != 1 ]; then
    run footprint-understudy-fast footprint "${FAST[@]}" --groups 10 --seconds "$IDLE" --subnet 25
    run footprint-understudy-recommended footprint "${RECOMMENDED[@]}" --groups 10 --seconds "$IDLE" --subnet 25
    run footprint-understudy-builtin-default footprint "${BUILTIN[@]}" --groups 10 --seconds "$IDLE" --subnet 25
    if [ "${SKIP_KEEPALIVED:-0}" != 1 ]; then
        for advert in 0.1 0.01; do
            run "footprint-keepalived-$advert-10" footprint --competitor keepalived --advert "$advert" --vrrp "$VRRP" --groups 10 \
                --seconds "$IDLE" --subnet 25
            run "footprint-keepalived-$advert-1" footprint --competitor keepalived --advert "$advert" --vrrp "$VRRP" --groups 1 \
                --seconds "$IDLE" --subnet 25
        done
    fi
fi

# ---------------------------------------------------------------- 4: cluster size
if [ "${SKIP_SIZES:-0}" != 1 ]; then
    for size in $SIZES; do
        # About 60 MiB resident per server (daemon and keeper) plus margin; skip what cannot fit.
        available=$(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
        if [ "$available" -lt $((size * 150 + 1024)) ]; then
            log "size $size: skipped, $available MiB available (needs about $((size * 150 + 1024)))"
            echo "size $size skipped: $available MiB available" >> "$OUT/machine.txt"
            continue
        fi
        run "size-$size" failover-bench "${RECOMMENDED[@]}" --servers "$size" --faults link-down --runs "$SIZE_RUNS" \
            --settle "$SIZE_SETTLE" --subnet 23
    done
fi

read -r TOTAL1 STEAL1 < <(stat_ticks)
awk -v t="$((TOTAL1 - TOTAL0))" -v s="$((STEAL1 - STEAL0))" \
    'BEGIN { printf "steal (whole run): %.2f %% of all CPU time\n", (t > 0 ? s * 100 / t : 0) }' >> "$OUT/machine.txt"
echo "load at end:    $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
echo "finished (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')" >> "$OUT/machine.txt"

# ---------------------------------------------------------------- 5: release flags against memory
if [ "${MEMORY_VARIANTS:-0}" = 1 ]; then
    echo "scripts/bench/memory-variants.sh $OUT" >> "$COMMANDS"
    scripts/bench/memory-variants.sh "$OUT" || FAILED+=(memory-variants)
fi

python3 "$ROOT/scripts/bench/issue19_summary.py" "$OUT" > /dev/null
log "summary: $OUT/summary.md"
if [ ${#FAILED[@]} -gt 0 ]; then
    log "failed: ${FAILED[*]}"
    exit 1
fi
