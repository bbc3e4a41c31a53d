#!/usr/bin/env bash
# Prints one digest of what the simulator does over a fixed set of seeds: every schedule's
# trace (servers' decisions, script runs, log lines) and verdict. A change meant to keep the
# Engine's behaviour (a refactoring) must keep the digest; run it before and after.
#
#   scripts/sim-digest.sh [THREE_SERVER_SEEDS] [FIVE_SERVER_SEEDS] [TWO_SERVER_SEEDS]
#
# Defaults: 200, 50 and 50 seeds (the first of the test suite's ranges).
set -euo pipefail
cd "$(dirname "$0")/.."

three=${1:-200}
five=${2:-50}
two=${3:-50}

swift build --product understudy >/dev/null
binary=.build/debug/understudy
# Without the regression seeds and the closing line of rates (its times vary from run to run).
{
    "$binary" simulate --verbose --no-regressions --servers 3 --seed 1 --count "$three"
    "$binary" simulate --verbose --no-regressions --servers 5 --seed 100000 --count "$five"
    "$binary" simulate --verbose --no-regressions --servers 2 --seed 200000 --count "$two"
} | grep -v ' schedules (seeds ' | sha256sum | cut -d' ' -f1
