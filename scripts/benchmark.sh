#!/usr/bin/env bash
# The failover benchmark of Understudy (a benchmark, not a test). One command reproduces the
# numbers in docs/benchmarks.md on a Debian machine with the Swift toolchain; no root needed
# (loopback addresses only).
#
#   scripts/benchmark.sh [--runs N] [--idle-seconds S] [--out DIR] [--skip-build] [--binary PATH]
#
# --skip-build uses the existing release binary; --binary uses another one (e.g. a debug
# build while working on this script: not for published numbers).
#
# It builds the release binary, starts a three-server cluster on 127.0.0.51-53 (control port
# 39001, heartbeat port 39002; heartbeat interval 100ms, timeout 500ms, majority
# resolution, sync wait 2s) whose group "web" runs the demo's HTTP responder on
# 127.0.0.150:18080, and measures:
#   1. idle footprint of each daemon (VmRSS, CPU % of one core over S seconds, default 60);
#   2. unplanned failover: kill -9 of the daemon running "web" -> first HTTP answer from the
#      new server (N runs, default 20);
#   3. planned move: `clpgrp -m web` -> first HTTP answer from the new server, raw and net of
#      the scripts' own run time (N runs).
# Raw values (CSV), the summary and the daemons' logs go to the folder it prints (default
# .build/benchmarks/<UTC time>). Everything it starts is stopped on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HELPER="$ROOT/scripts/bench/bench.py"

RUNS=20
IDLE_SECONDS=60
OUT=""
BUILD=1
BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --idle-seconds) IDLE_SECONDS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        --binary) BIN=$2; BUILD=0; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*) echo "--runs needs a number" >&2; exit 2 ;; esac
case "$IDLE_SECONDS" in ''|*[!0-9]*) echo "--idle-seconds needs a number" >&2; exit 2 ;; esac
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 500 ] || { echo "--runs must be 1-500" >&2; exit 2; }
[ "$IDLE_SECONDS" -ge 1 ] && [ "$IDLE_SECONDS" -le 3600 ] || { echo "--idle-seconds must be 1-3600" >&2; exit 2; }

# ---------------------------------------------------------------- the profile
SERVERS=(node1 node2 node3)
declare -A ADDRESS=([node1]=127.0.0.51 [node2]=127.0.0.52 [node3]=127.0.0.53)
CONTROL_PORT=39001
HEARTBEAT_PORT=39002
HTTP_PORT=39003
SERVICE_HOST=127.0.0.150
SERVICE_PORT=18080
GROUP=web
HB_INTERVAL=100ms
HB_TIMEOUT=500ms
SYNC_WAIT=2s
SETTLE_SECONDS=1       # pause between runs once the cluster is stable again
STEP_TIMEOUT=60        # seconds; bound of every wait below
PROBE_TIMEOUT=30       # seconds; a failover or move slower than this aborts the benchmark

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- what it needs
# python3 (the prober and the statistics; standard library only). Installed only when missing.
if ! command -v python3 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3
    else
        die "python3 is missing and there is no root or sudo to install it (apt-get install python3)"
    fi
fi
command -v swift >/dev/null 2>&1 || die "the Swift toolchain (swift) is not on PATH"

if [ "$BUILD" = 1 ]; then
    log "building the release binary (swift build -c release --product understudy; ~9 min the first time on 2 cores)"
    swift build -c release --product understudy
fi
if [ -z "$BIN" ]; then
    BIN="$(swift build -c release --show-bin-path)/understudy"
    [ -x "$BIN" ] || die "no release binary at $BIN (run without --skip-build)"
else
    [ -x "$BIN" ] || die "no executable at $BIN"
    BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
    log "using $BIN instead of the release build"
fi

[ -n "$OUT" ] || OUT="$ROOT/.build/benchmarks/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/understudy-bench.XXXXXX")
EVENTS="$WORK/events.log"
: >"$EVENTS"
log "results folder: $OUT"

# ---------------------------------------------------------------- cleanup, whatever happens
declare -A DAEMON_PID=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    local s pid alive i
    for s in "${SERVERS[@]}"; do
        pid=${DAEMON_PID[$s]:-}
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done
    # SIGTERM stops the groups cleanly; give it at most 15 s, then SIGKILL.
    for i in $(seq 1 150); do
        alive=0
        for s in "${SERVERS[@]}"; do
            pid=${DAEMON_PID[$s]:-}
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for s in "${SERVERS[@]}"; do
        pid=${DAEMON_PID[$s]:-}
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "[bench] $s (pid $pid) did not stop within 15 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
        [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
    # Responders die with their daemon (they poll their parent); make sure, by the pids the
    # start script recorded, checking that the pid is still a responder of this benchmark.
    if [ -f "$EVENTS" ]; then
        for pid in $(awk '$2 == "start-begin" {print $4}' "$EVENTS" | sort -u); do
            if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "demo-responder --address $SERVICE_HOST --port $SERVICE_PORT"; then
                kill -KILL "$pid" 2>/dev/null
            fi
        done
    fi
    if [ -d "$WORK" ]; then
        mkdir -p "$OUT/logs"
        for s in "${SERVERS[@]}"; do
            [ -f "$WORK/$s/daemon.log" ] && cp "$WORK/$s/daemon.log" "$OUT/logs/$s-daemon.log"
            [ -f "$WORK/$s/alert.log" ] && cp "$WORK/$s/alert.log" "$OUT/logs/$s-alert.log"
            [ -f "$WORK/$s/logs/web-app.log" ] && cp "$WORK/$s/logs/web-app.log" "$OUT/logs/$s-web-app.log"
        done
        cp "$EVENTS" "$OUT/logs/script-events.log" 2>/dev/null
        rm -rf "$WORK"
    fi
    [ "$rc" != 0 ] && echo "[bench] failed (exit $rc); logs in $OUT/logs" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- the machine
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    if git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
        echo "git commit: $(git -C "$ROOT" rev-parse HEAD) ($(git -C "$ROOT" status --porcelain | wc -l) paths with uncommitted changes)"
    else
        echo "git commit: unknown (not a git checkout)"
    fi
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -sr)"
    echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "swift: $(swift --version 2>&1 | grep -m1 -i 'swift version')"
    echo "binary: $BIN ($(stat -c %s "$BIN") bytes)"
    echo "profile: 3 servers on ${ADDRESS[node1]}-53, heartbeat interval $HB_INTERVAL, timeout $HB_TIMEOUT, majority, sync wait $SYNC_WAIT; service $SERVICE_HOST:$SERVICE_PORT"
    echo "runs: $RUNS failovers, $RUNS moves; idle window ${IDLE_SECONDS}s"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"
# What exactly was built: uncommitted paths and the resolved package versions.
git -C "$ROOT" status --porcelain >"$OUT/git-status.txt" 2>/dev/null || true
[ -f "$ROOT/Package.resolved" ] && cp "$ROOT/Package.resolved" "$OUT/Package.resolved"

# Nothing may already use the benchmark's addresses (another benchmark running?).
python3 - "$SERVICE_HOST" "$SERVICE_PORT" "${ADDRESS[node1]}" "${ADDRESS[node2]}" "${ADDRESS[node3]}" "$CONTROL_PORT" <<'EOF' || die "an address of the benchmark is in use (another benchmark running?)"
import socket, sys
host, port, a1, a2, a3, control = sys.argv[1:]
for h, p in [(host, port), (a1, control), (a2, control), (a3, control)]:
    try:
        socket.create_connection((h, int(p)), timeout=0.5).close()
        print("%s:%s answers" % (h, p), file=sys.stderr)
        sys.exit(1)
    except OSError:
        pass
EOF

# ---------------------------------------------------------------- the cluster
timeout 30 "$BIN" keygen "$WORK/cluster.key" >/dev/null
SCRIPTS="$WORK/scripts/web/web-app"
mkdir -p "$SCRIPTS"
cat >"$SCRIPTS/start.sh" <<EOF
#!/bin/sh
# Records when it begins, then becomes the demo's responder (start-mode: async).
echo "\$(date +%s%N) start-begin \$CLP_SERVER_LOCAL \$\$" >> '$EVENTS'
exec '$BIN' demo-responder --address $SERVICE_HOST --port $SERVICE_PORT --name "\$CLP_SERVER_LOCAL"
EOF
cat >"$SCRIPTS/stop.sh" <<EOF
#!/bin/sh
# Records its begin and end; ends the responder started by start.sh.
echo "\$(date +%s%N) stop-begin \$CLP_SERVER_LOCAL \$\$" >> '$EVENTS'
[ -n "\$CLP_PID" ] && kill "\$CLP_PID" 2>/dev/null
echo "\$(date +%s%N) stop-end \$CLP_SERVER_LOCAL \$\$" >> '$EVENTS'
exit 0
EOF
chmod 755 "$SCRIPTS/start.sh" "$SCRIPTS/stop.sh"
cat >"$WORK/cluster.yaml" <<EOF
# Understudy failover benchmark: three servers on loopback addresses.
cluster:
  name: bench
  comment: Understudy failover benchmark
  secret-file: cluster.key
  timing:
    heartbeat-interval: $HB_INTERVAL
    heartbeat-timeout: $HB_TIMEOUT
    sync-wait: $SYNC_WAIT
  network-partition:
    action: none
  ports: {control: $CONTROL_PORT, heartbeat: $HEARTBEAT_PORT, http: $HTTP_PORT}
  os-commands:
    shutdown: [/bin/sh, -c, "echo shutdown >> '$WORK/os-actions.log'"]
    reboot: [/bin/sh, -c, "echo reboot >> '$WORK/os-actions.log'"]

servers:
  - name: node1
  - name: node2
  - name: node3

heartbeats:
  - name: lanhb1
    type: lanhb
    addresses: {node1: ${ADDRESS[node1]}, node2: ${ADDRESS[node2]}, node3: ${ADDRESS[node3]}}

network-partition:
  - name: majority1
    type: majority

groups:
  - name: $GROUP
    comment: demo responder on $SERVICE_HOST:$SERVICE_PORT
    resources:
      - name: web-app
        type: exec
        start: scripts/web/web-app/start.sh
        stop: scripts/web/web-app/stop.sh
        start-mode: async
        timeout: 30s
        stop-timeout: 30s
EOF
timeout 30 "$BIN" config check "$WORK/cluster.yaml" >/dev/null
cp "$WORK/cluster.yaml" "$OUT/cluster.yaml"

DIRS="$WORK/node1,$WORK/node2,$WORK/node3"

start_daemon() {
    local s=$1 i
    mkdir -p "$WORK/$s"
    chmod 700 "$WORK/$s"
    "$BIN" daemon --config "$WORK/cluster.yaml" --server "$s" --state-dir "$WORK/$s" \
        </dev/null >>"$WORK/$s/daemon.log" 2>&1 &
    DAEMON_PID[$s]=$!
    for i in $(seq 1 100); do
        kill -0 "${DAEMON_PID[$s]}" 2>/dev/null || { tail -5 "$WORK/$s/daemon.log" >&2; die "daemon $s exited at start"; }
        timeout 5 "$BIN" clpstat --json --local --state-dir "$WORK/$s" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "daemon $s does not answer on its socket after 10 s"
}

wait_stable() { # server expected to run the group
    python3 "$HELPER" wait-stable --binary "$BIN" --dirs "$DIRS" --servers node1,node2,node3 --group "$GROUP" \
        --on "$1" --host "$SERVICE_HOST" --port "$SERVICE_PORT" --timeout "$STEP_TIMEOUT" \
        || die "the cluster did not settle with $GROUP on $1 within ${STEP_TIMEOUT}s"
}

move_back_to_node1() { # from wherever it runs now (named in $1)
    timeout $((STEP_TIMEOUT + 30)) "$BIN" clpgrp -m "$GROUP" -a node1 --state-dir "$WORK/$1" --timeout "$STEP_TIMEOUT" >/dev/null \
        || die "moving $GROUP back to node1 failed"
    wait_stable node1
}

log "starting node1-3 (release binary)"
for s in "${SERVERS[@]}"; do start_daemon "$s"; done
wait_stable node1
log "cluster stable: $GROUP online on node1; responder answers at http://$SERVICE_HOST:$SERVICE_PORT/"

# ---------------------------------------------------------------- 1. idle footprint
sleep 5
log "idle footprint: sampling the three daemons for ${IDLE_SECONDS}s"
python3 "$HELPER" footprint --seconds "$IDLE_SECONDS" \
    --pids "node1=${DAEMON_PID[node1]}=master+runs $GROUP,node2=${DAEMON_PID[node2]}=standby,node3=${DAEMON_PID[node3]}=standby" \
    >"$OUT/footprint.csv"
cat "$OUT/footprint.csv"

# Wall time of one CLI call, to read the planned-move numbers (clpgrp is such a call).
echo "call,ms" >"$OUT/cli.csv"
for i in $(seq 1 10); do
    t0=$(date +%s%N)
    timeout 10 "$BIN" clpstat --json --local --state-dir "$WORK/node1" >/dev/null
    t1=$(date +%s%N)
    echo "$i,$(( (t1 - t0) / 1000 ))" | awk -F, '{printf "%s,%.1f\n", $1, $2 / 1000}' >>"$OUT/cli.csv"
done

# ---------------------------------------------------------------- 2. unplanned failover
python3 "$HELPER" row --kind failover --header >"$OUT/failover.csv"
for run in $(seq 1 "$RUNS"); do
    victim=${DAEMON_PID[node1]}
    if ! result=$(python3 "$HELPER" probe --host "$SERVICE_HOST" --port "$SERVICE_PORT" --old node1 \
        --interval 0.01 --connect-timeout 0.05 --timeout "$PROBE_TIMEOUT" --kill "$victim"); then
        die "failover run $run: no answer from another server within ${PROBE_TIMEOUT}s after kill -9 ($result)"
    fi
    wait "$victim" 2>/dev/null || true
    DAEMON_PID[node1]=""
    row=$(python3 "$HELPER" row --kind failover --probe-json "$result" --events "$EVENTS" --old node1 --run "$run")
    echo "$row" >>"$OUT/failover.csv"
    IFS=, read -r _ _ _ _ total detect activation new _ <<<"$row"
    log "failover $run/$RUNS: ${total} ms to the first answer from $new (kill -> start script ${detect} ms, start script -> answer ${activation} ms)"
    # Back to the starting point: restart node1, clear its abnormal-stop suspension with a
    # clean restart of its cluster service, move the group back.
    start_daemon node1
    timeout $((STEP_TIMEOUT + 30)) "$BIN" clpcl -r --state-dir "$WORK/node1" --timeout "$STEP_TIMEOUT" >/dev/null || die "clpcl -r on node1 failed"
    wait_stable "$new"
    move_back_to_node1 "$new"
    sleep "$SETTLE_SECONDS"
done

# ---------------------------------------------------------------- 3. planned move
python3 "$HELPER" row --kind move --header >"$OUT/move.csv"
for run in $(seq 1 "$RUNS"); do
    if ! result=$(python3 "$HELPER" probe --host "$SERVICE_HOST" --port "$SERVICE_PORT" --old node1 \
        --interval 0.01 --connect-timeout 0.05 --timeout "$PROBE_TIMEOUT" \
        -- "$BIN" clpgrp -m "$GROUP" --state-dir "$WORK/node1" --timeout "$STEP_TIMEOUT"); then
        die "move run $run: no answer from another server within ${PROBE_TIMEOUT}s after clpgrp -m ($result)"
    fi
    row=$(python3 "$HELPER" row --kind move --probe-json "$result" --events "$EVENTS" --old node1 --run "$run")
    echo "$row" >>"$OUT/move.csv"
    IFS=, read -r _ _ _ _ _ _ raw net _ stopscript _ _ cmdexit rc new _ <<<"$row"
    [ "$rc" = 0 ] || die "move run $run: clpgrp -m exited with $rc ($result)"
    log "move $run/$RUNS: raw ${raw} ms, net ${net} ms (stop script ${stopscript} ms) to the first answer from $new; clpgrp returned after ${cmdexit} ms"
    wait_stable "$new"
    move_back_to_node1 "$new"
    sleep "$SETTLE_SECONDS"
done

# ---------------------------------------------------------------- after the runs
# The same daemons' memory after all the runs (node2 and node3 ran throughout; node1 is the
# last restarted one).
python3 "$HELPER" footprint --seconds 5 \
    --pids "node1=${DAEMON_PID[node1]}=restarted,node2=${DAEMON_PID[node2]}=ran all runs,node3=${DAEMON_PID[node3]}=ran all runs" \
    >"$OUT/footprint-after.csv"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

{
    echo "# Understudy failover benchmark"
    echo
    sed 's/^/    /' "$OUT/machine.txt"
    echo
    python3 "$HELPER" summarize --failover "$OUT/failover.csv" --move "$OUT/move.csv" \
        --footprint "$OUT/footprint.csv" --cli "$OUT/cli.csv"
    echo
    echo "Memory after all runs (5 s window):"
    echo
    python3 "$HELPER" summarize --failover "$OUT/failover.csv" --move "$OUT/move.csv" \
        --footprint "$OUT/footprint-after.csv" | sed -n '/^| idle daemon/,$p'
} >"$OUT/summary.md"
echo
cat "$OUT/summary.md"
echo
log "raw values: $OUT/failover.csv, $OUT/move.csv, $OUT/footprint.csv; summary: $OUT/summary.md"
