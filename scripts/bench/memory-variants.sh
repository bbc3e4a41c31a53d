#!/usr/bin/env bash
# Which release-build flags cut the idle memory of the daemon (issue 19). Builds the release
# binary once per variant (link-time flags relink only; -Osize recompiles in a scratch folder
# of its own), copies each binary aside, and measures each with `understudy lab footprint`
# (fast profile, 2 servers, 10 groups). Root needed (the lab).
#
#   scripts/bench/memory-variants.sh OUT_DIR
#
# Environment: VARIANT_IDLE (seconds measured per variant, default 30), VARIANTS (names to
# run, default "relr no-pie combined baseline strip": baseline flags last, so
# .build/release/understudy is left as the package builds it; add osize for -Osize, a
# full rebuild of about 15 minutes), BUILD_LOCK (a file to flock around all the builds at
# once, e.g. /tmp/understudy-build.lock on a shared machine). All variants are built first,
# then measured.
#
# Writes OUT_DIR/memory-variants.json (one entry per variant: flags, binary size, the
# daemon's VmRSS/RssAnon/RssFile and the PSS of daemon + keeper) and OUT_DIR/variants/NAME/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:?usage: memory-variants.sh OUT_DIR}
mkdir -p "$OUT/variants"
OUT=$(cd "$OUT" && pwd)
IDLE=${VARIANT_IDLE:-30}
VARIANTS=${VARIANTS:-"relr no-pie combined baseline strip"}
case "$IDLE" in '' | *[!0-9]*) echo "VARIANT_IDLE must be a number of seconds" >&2; exit 2 ;; esac

# The release flags of scripts/package-deb.sh.
BASE=(-c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now --product understudy)
declare -A FLAGS=(
    [baseline]=""
    # SwiftPM already links release builds with --gc-sections (dead stripping): a variant
    # adding it again shows what that is worth (nothing).
    [gc-sections]="-Xlinker --gc-sections"
    [relr]="-Xlinker -z -Xlinker pack-relative-relocs"
    [no-pie]="-Xlinker -no-pie"
    [strip]=""
    [combined]="-Xlinker -no-pie -Xlinker -z -Xlinker pack-relative-relocs"
    [osize]="-Xswiftc -Osize"
)

build() { # NAME FLAGS...
    local name=$1
    shift
    local scratch=()
    [ "$name" = osize ] && scratch=(--scratch-path "$ROOT/.build/osize")
    echo "swift build ${BASE[*]} $* ${scratch[*]}" > "$OUT/variants/$name/command.txt"
    swift build "${BASE[@]}" "$@" "${scratch[@]}" > "$OUT/variants/$name/build.log" 2>&1 || return 1
    if [ "$name" = osize ]; then
        cp "$ROOT/.build/osize/release/understudy" "$OUT/variants/$name/understudy"
    else
        cp "$ROOT/.build/release/understudy" "$OUT/variants/$name/understudy"
    fi
    if [ "$name" = strip ]; then
        strip --strip-all "$OUT/variants/$name/understudy"
        echo "strip --strip-all understudy" >> "$OUT/variants/$name/command.txt"
    fi
}

for name in $VARIANTS; do
    [ -n "${FLAGS[$name]+set}" ] || { echo "unknown variant $name (${!FLAGS[*]})" >&2; exit 2; }
done

# Phase 1: every build (under one lock when BUILD_LOCK is set).
if [ "${VARIANTS_PHASE:-all}" != measure ]; then
    if [ -n "${BUILD_LOCK:-}" ] && [ "${VARIANTS_PHASE:-all}" = all ]; then
        flock "$BUILD_LOCK" env VARIANTS_PHASE=build "$0" "$OUT"
    else
        for name in $VARIANTS; do
            mkdir -p "$OUT/variants/$name"
            rm -f "$OUT/variants/$name/understudy"
            echo "[variants] $name: building"
            # shellcheck disable=SC2086 # the flags are words
            build "$name" ${FLAGS[$name]} || echo "[variants] $name: the build failed (see $OUT/variants/$name/build.log)"
        done
    fi
    [ "${VARIANTS_PHASE:-all}" = build ] && exit 0
fi

# Phase 2: the measurements, one variant after the other.
results=()
for name in $VARIANTS; do
    bin="$OUT/variants/$name/understudy"
    [ -x "$bin" ] || { echo "[variants] $name: no binary (build failed); skipped"; continue; }
    echo "[variants] $name: measuring ${IDLE} s"
    cmd=("$bin" lab footprint --interval 20ms --timeout-ms 100 --ping-timeout 30ms --probe-wait 20ms --groups 10
        --seconds "$IDLE" --warmup 5 --subnet 13 --json "$OUT/variants/$name/footprint.json")
    echo "${cmd[*]}" >> "$OUT/variants/$name/command.txt"
    if ! "${cmd[@]}" > "$OUT/variants/$name/footprint.log" 2>&1; then
        echo "[variants] $name: the measurement failed (see $OUT/variants/$name/footprint.log)"
        "$bin" lab down --prefix foot13 > /dev/null 2>&1 || true
        continue
    fi
    results+=("$name")
done

python3 - "$OUT" "${results[@]}" <<'EOF'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
entries = []
for name in names:
    folder = os.path.join(out, "variants", name)
    report = json.load(open(os.path.join(folder, "footprint.json")))
    daemon = report["result"]["daemons"][0]
    main = daemon["processes"][0]
    flags = open(os.path.join(folder, "command.txt")).readline().strip()
    entries.append({
        "name": name, "flags": flags, "binaryBytes": os.path.getsize(os.path.join(folder, "understudy")),
        "vmRSS": main["status"].get("VmRSS", 0), "rssAnon": main["status"].get("RssAnon", 0),
        "rssFile": main["status"].get("RssFile", 0), "pss": daemon["pssKiB"],
    })
json.dump(entries, open(os.path.join(out, "memory-variants.json"), "w"), indent=2)
for entry in entries:
    print(f"[variants] {entry['name']}: binary {entry['binaryBytes'] / 1e6:.0f} MB, VmRSS {entry['vmRSS'] / 1024:.1f} MiB "
          f"(anon {entry['rssAnon'] / 1024:.1f}, file {entry['rssFile'] / 1024:.1f}), PSS daemon+keeper {entry['pss'] / 1024:.1f} MiB")
EOF
