#!/usr/bin/env bash
# Soaks the simulator: many seeded fault schedules over seed ranges the test suite does not
# run, in parallel, with every invariant checked. Not part of CI (it takes an hour or more);
# run it before changing how servers decide, and after.
#
#   scripts/soak.sh [THREE_SERVER_SCHEDULES] [FIVE_SERVER_SCHEDULES] [FIRST_SEED] [JOBS] [TWO_SERVER_SCHEDULES]
#
# Defaults: 15000 three-server, 5000 five-server and 5000 two-server (pingnp) schedules, a first
# seed drawn from the clock (a fresh range each run; the suite uses seeds below 1,000,000), one
# job per core.
# Prints every failing seed with the command that replays it; exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

three=${1:-15000}
five=${2:-5000}
first=${3:-$((1000000 + ($(date +%s) % 1000000) * 1000))}
jobs=${4:-$(nproc)}
two=${5:-5000}

swift build --product understudy >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy: a build during the soak must not change what the later ranges run.
binary=$work/understudy
cp .build/debug/understudy "$binary"

# Split each count into one range per job: seed ranges never overlap between jobs or kinds.
ranges=()
for kind in "3 $three $first" "5 $five $((first + 500000000))" "2 $two $((first + 200000000))"; do
    set -- $kind
    servers=$1 count=$2 seed=$3
    [ "$count" -gt 0 ] || continue
    per=$(((count + jobs - 1) / jobs))
    while [ "$count" -gt 0 ]; do
        take=$((count < per ? count : per))
        ranges+=("$servers $seed $take")
        seed=$((seed + take))
        count=$((count - take))
    done
done

echo "soak: ${three} three-, ${five} five- and ${two} two-server schedules from seed ${first}, ${jobs} jobs"
started=$(date +%s)
index=0
running=0
for range in "${ranges[@]}"; do
    set -- $range
    # Failing seeds print FAILED, their violations and their trace; keep only the summary.
    ("$binary" simulate --servers "$1" --seed "$2" --count "$3" | grep -E '^seed .*FAILED|^  (I[0-9]|a log|heartbeat)' |
        sed -E "s|^seed ([0-9]+): FAILED.*|seed \\1 ($1 servers) FAILED; replay: swift run understudy simulate --seed \\1 --servers $1|" \
        >"$work/$index.out" || true) &
    index=$((index + 1))
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
failures=$(cat "$work"/*.out | grep -c '^seed' || true)
cat "$work"/*.out
echo "soak: $((three + five + two)) schedules in $(($(date +%s) - started)) s, ${failures} failed"
[ "$failures" -eq 0 ]
