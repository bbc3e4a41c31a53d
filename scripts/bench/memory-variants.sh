#!/usr/bin/env bash
# Which release-build link flags cut the idle memory of the daemon (issue 19). Builds the
# release binary once with the flags of scripts/package-deb.sh (`swift build -v`, so the link
# command is in the log), then links the same objects again with SwiftPM's own link command
# and each variant's flags (SwiftPM recompiles everything when -Xlinker flags change; relinking
# takes a minute and compares exactly the same code), copies each binary aside and measures it
# with `understudy lab footprint` (fast profile, 2 servers, 10 groups). Root needed (the lab).
#
#   scripts/bench/memory-variants.sh OUT_DIR
#
# Variants: baseline (the package's flags: -pie, --gc-sections from SwiftPM, -z now; the
# toolchain's clang links with gold), lld (the same linked by the toolchain's lld), relr (lld
# with -z pack-relative-relocs, which gold does not know), no-pie (clang -no-pie instead of
# -pie), combined (no-pie and relr), strip (baseline through strip --strip-all); osize
# (-Xswiftc -Osize: a full rebuild in .build/osize, about 15 minutes) only when named in
# VARIANTS.
#
# Environment: VARIANT_IDLE (seconds measured per variant, default 30), VARIANTS (default
# "baseline lld relr no-pie combined strip"), BUILD_LOCK (a file to flock around the build and the
# links, e.g. /tmp/understudy-build.lock on a shared machine).
#
# Writes OUT_DIR/memory-variants.json (one entry per variant: flags, binary size, the daemon's
# VmRSS/RssAnon/RssFile and the PSS of daemon + keeper) and OUT_DIR/variants/NAME/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:?usage: memory-variants.sh OUT_DIR}
mkdir -p "$OUT/variants"
OUT=$(cd "$OUT" && pwd)
IDLE=${VARIANT_IDLE:-30}
VARIANTS=${VARIANTS:-"baseline lld relr no-pie combined strip"}
case "$IDLE" in '' | *[!0-9]*) echo "VARIANT_IDLE must be a number of seconds" >&2; exit 2 ;; esac
for name in $VARIANTS; do
    case "$name" in baseline | lld | relr | no-pie | combined | strip | osize) ;; *) echo "unknown variant $name" >&2; exit 2 ;; esac
done

# The release flags of scripts/package-deb.sh.
BASE=(-c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now --product understudy)
LLD="-fuse-ld=lld"
RELR="-fuse-ld=lld -Xlinker -z -Xlinker pack-relative-relocs"

locked() { if [ -n "${BUILD_LOCK:-}" ]; then flock "$BUILD_LOCK" "$@"; else "$@"; fi; }

# Phase 1, builds (under the lock when BUILD_LOCK is set): the baseline with its link command,
# the relinks, -Osize when asked.
if [ "${VARIANTS_PHASE:-all}" != measure ]; then
    if [ -n "${BUILD_LOCK:-}" ] && [ "${VARIANTS_PHASE:-all}" = all ]; then
        flock "$BUILD_LOCK" env VARIANTS_PHASE=build BUILD_LOCK= "$0" "$OUT"
    else
        echo "[variants] building the release binary: swift build ${BASE[*]} -v"
        swift build "${BASE[@]}" -v > "$OUT/variants/build.log" 2>&1 || { echo "[variants] the build failed: $OUT/variants/build.log" >&2; exit 1; }
        bindir=$(swift build "${BASE[@]}" --show-bin-path)
        target="$bindir/understudy"
        # SwiftPM prints the link command only when it links; force one when it was up to date.
        if ! grep -qE "^[^ ]*clang .* -o $target( |\$)" "$OUT/variants/build.log"; then
            rm -f "$target"
            swift build "${BASE[@]}" -v > "$OUT/variants/build.log" 2>&1
        fi
        grep -E "^[^ ]*clang .* -o $target( |\$)" "$OUT/variants/build.log" | tail -1 > "$OUT/variants/link.cmd"
        [ -s "$OUT/variants/link.cmd" ] || { echo "[variants] no link command in $OUT/variants/build.log" >&2; exit 1; }
        relink() { # NAME SED-EXPRESSION EXTRA-FLAGS
            local name=$1 expr=$2 extra=$3 cmd
            mkdir -p "$OUT/variants/$name"
            cmd=$(sed -e "s# -o $target\\( \\|\$\\)# -o $OUT/variants/$name/understudy\\1#" -e "$expr" "$OUT/variants/link.cmd")
            # A file, not `sh -c`: the command is longer than one argument may be (128 KiB).
            printf '%s %s\n' "$cmd" "$extra" > "$OUT/variants/$name/link.sh"
            echo "link: SwiftPM's link command$([ -n "$extra" ] && echo " + $extra")$(printf '%s' "$expr" | grep -q no-pie && echo ', clang -no-pie instead of -pie')" > "$OUT/variants/$name/command.txt"
            sh "$OUT/variants/$name/link.sh" > "$OUT/variants/$name/link.log" 2>&1 || { echo "[variants] $name: the link failed ($OUT/variants/$name/link.log)"; rm -f "$OUT/variants/$name/understudy"; }
        }
        for name in $VARIANTS; do
            case "$name" in
                baseline) relink baseline 's|^x|x|' '' ;;
                lld) relink lld 's|^x|x|' "$LLD" ;;
                relr) relink relr 's|^x|x|' "$RELR" ;;
                no-pie) relink no-pie 's|clang -pie |clang -no-pie |' '' ;;
                combined) relink combined 's|clang -pie |clang -no-pie |' "$RELR" ;;
                strip)
                    mkdir -p "$OUT/variants/strip"
                    cp "$target" "$OUT/variants/strip/understudy"
                    strip --strip-all "$OUT/variants/strip/understudy"
                    echo "strip --strip-all (the baseline binary)" > "$OUT/variants/strip/command.txt"
                    ;;
                osize)
                    mkdir -p "$OUT/variants/osize"
                    echo "swift build ${BASE[*]} -Xswiftc -Osize --scratch-path .build/osize" > "$OUT/variants/osize/command.txt"
                    if swift build "${BASE[@]}" -Xswiftc -Osize --scratch-path "$ROOT/.build/osize" > "$OUT/variants/osize/build.log" 2>&1; then
                        cp "$ROOT/.build/osize/release/understudy" "$OUT/variants/osize/understudy"
                    else
                        echo "[variants] osize: the build failed ($OUT/variants/osize/build.log)"
                    fi
                    ;;
            esac
            [ -x "$OUT/variants/$name/understudy" ] && echo "[variants] $name: $(stat -c %s "$OUT/variants/$name/understudy") bytes"
        done
    fi
    [ "${VARIANTS_PHASE:-all}" = build ] && exit 0
fi

# Phase 2: the measurements, one variant after the other.
results=()
for name in $VARIANTS; do
    bin="$OUT/variants/$name/understudy"
    [ -x "$bin" ] || { echo "[variants] $name: no binary; skipped"; continue; }
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
