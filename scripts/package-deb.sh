#!/usr/bin/env bash
# Builds the Debian package of Understudy with dpkg-deb (docs/operations.md, "Installing the
# Debian package").
#
#   scripts/package-deb.sh [--binary PATH] [--version VERSION] [--output DIR] [--compression xz|gzip|none]
#
# Without --binary it builds the release binary with the Swift standard library linked in
# (`swift build -c release --static-swift-stdlib`, about 10 minutes), so the package needs no
# Swift toolchain on the servers. With --binary it packages that file (the tests package the
# debug build, which still needs the toolchain's libraries at run time).
#
# The version: --version, else the git tag on HEAD (vX.Y.Z → X.Y.Z-1), else the product
# version the binary reports to scripts (Defaults.productVersion, CLP_VERSION_FULL).
#
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$(pwd)

binary=""
version=""
output="$root_dir/.build/deb"
compression="xz"
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --version) version=${2:?--version needs a version}; shift 2 ;;
    --output) output=${2:?--output needs a folder}; shift 2 ;;
    --compression) compression=${2:?--compression needs xz, gzip or none}; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "package-deb.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$compression" in xz | gzip | none) ;; *) echo "package-deb.sh: --compression must be xz, gzip or none" >&2; exit 2 ;; esac
for tool in dpkg-deb dpkg-shlibdeps python3 gzip strip ldd; do
    command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool is missing (Debian packages dpkg-dev, python3, binutils, libc-bin)" >&2; exit 2; }
done

if [ -z "$binary" ]; then
    # -z now: full RELRO, as Debian's hardening flags link (lintian: hardening-no-bindnow). With
    # the Swift runtime linked in and no local rpath the binary has no RUNPATH at all.
    swift build -c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now --product understudy >&2
    binary="$root_dir/.build/release/understudy"
fi
[ -x "$binary" ] || { echo "package-deb.sh: $binary is not an executable" >&2; exit 2; }

if [ -z "$version" ]; then
    tag=$(git -C "$root_dir" describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null || true)
    if [ -n "$tag" ]; then
        version="${tag#v}-1"
    else
        version=$(sed -n 's/.*static let productVersion = "\(.*\)".*/\1/p' "$root_dir/Sources/UnderstudyModel/Config/Defaults.swift")
    fi
fi
if ! printf '%s' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$'; then
    echo "package-deb.sh: '$version' is not a Debian version (e.g. 0.2.0-1)" >&2
    exit 2
fi
arch=$(dpkg --print-architecture)
# Reproducible dates: the last commit's time when there is one.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root_dir" log -1 --format=%ct 2>/dev/null || date +%s)}
date_text=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
date_rfc=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
maintainer=${DEB_MAINTAINER:-"Understudy developers <understudy@example.org>"}

work=$(mktemp -d /tmp/understudy-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
stage="$work/understudy_${version}_$arch"
umask 022
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/lib/systemd/system" "$stage/usr/lib/tmpfiles.d" \
    "$stage/usr/share/man/man8" "$stage/usr/share/doc/understudy/examples" \
    "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d" "$stage/etc/understudy" "$stage/usr/share/lintian/overrides"
chmod 0755 "$stage/etc/understudy"

# The binary, stripped as dh_strip does; the clp* aliases as relative symlinks. The alias list
# comes from the binary itself (install-aliases), so it cannot drift from Aliases.names.
install -m 0755 "$binary" "$stage/usr/sbin/understudy"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/sbin/understudy"
mkdir "$work/aliases"
"$stage/usr/sbin/understudy" install-aliases "$work/aliases" >/dev/null
aliases=$(cd "$work/aliases" && ls)
[ -n "$aliases" ] || { echo "package-deb.sh: the binary names no clp* aliases" >&2; exit 1; }
for alias in $aliases; do ln -s understudy "$stage/usr/sbin/$alias"; done

# Manual pages and shell completion, from the argument parser.
python3 "$root_dir/scripts/manpages.py" "$stage/usr/sbin/understudy" "$work/man" "$version" "$date_text" > "$work/man.list"
while read -r kind name target; do
    case "$kind" in
    page) gzip -9n -c "$work/man/$name" > "$stage/usr/share/man/man8/$name.gz" ;;
    link) ln -s "$target.gz" "$stage/usr/share/man/man8/$name.gz" ;;
    esac
done < "$work/man.list"
# bash-completion sources its files: no #! line (lintian: bash-completion-with-hashbang).
# The clp* commands complete as `understudy clp…`; bash-completion finds a command's file by
# its name, hence a link per alias.
completions="$stage/usr/share/bash-completion/completions"
{
    "$stage/usr/sbin/understudy" --generate-completion-script bash | sed '1{/^#!/d}'
    cat packaging/deb/bash-completion-aliases.bash
    echo "complete -o filenames -F __understudy_alias" $aliases
} > "$completions/understudy"
for alias in $aliases; do ln -s understudy "$completions/$alias"; done
"$stage/usr/sbin/understudy" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_understudy"
"$stage/usr/sbin/understudy" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/understudy.fish"

# systemd, configuration, documentation.
install -m 0644 packaging/deb/understudy.service "$stage/lib/systemd/system/understudy.service"
install -m 0644 packaging/deb/tmpfiles.conf "$stage/usr/lib/tmpfiles.d/understudy.conf"
install -m 0644 packaging/deb/cluster.yaml.example "$stage/etc/understudy/cluster.yaml.example"
for doc in configuration commands operations scripts alerts monitors api; do
    gzip -9n -c "docs/$doc.md" > "$stage/usr/share/doc/understudy/$doc.md.gz"
done
install -m 0644 packaging/deb/cluster.yaml.example "$stage/usr/share/doc/understudy/examples/cluster.yaml"
install -m 0644 packaging/deb/copyright "$stage/usr/share/doc/understudy/copyright"
install -m 0644 packaging/deb/lintian-overrides "$stage/usr/share/lintian/overrides/understudy"
printf 'understudy (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
    "$version" "$(git -C "$root_dir" describe --always --dirty 2>/dev/null || echo 'a source tree')" "$maintainer" "$date_rfc" |
    gzip -9n > "$stage/usr/share/doc/understudy/changelog.Debian.gz"

# Control files.
for script in postinst prerm postrm; do install -m 0755 "packaging/deb/$script" "$stage/DEBIAN/$script"; done
echo /etc/understudy/cluster.yaml.example > "$stage/DEBIAN/conffiles"
# Depends from the libraries the binary links (dpkg-shlibdeps needs a debian/control to run
# beside). Libraries no package owns (the toolchain's, in a debug build) are left out.
mkdir -p "$work/src/debian"
printf 'Source: understudy\n\nPackage: understudy\nArchitecture: any\n' > "$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O --ignore-missing-info -e"$stage/usr/sbin/understudy" 2>"$work/shlibdeps.err" |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package-deb.sh: dpkg-shlibdeps found no dependencies:" >&2; cat "$work/shlibdeps.err" >&2; exit 1; }
if ldd "$stage/usr/sbin/understudy" | grep -c 'libswiftCore' >/dev/null; then
    echo "package-deb.sh: note: this binary links the Swift runtime dynamically; the package runs only where that runtime is installed (package a --static-swift-stdlib build for servers)" >&2
fi
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: understudy
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends, init-system-helpers (>= 1.54~)
Recommends: iproute2, iputils-arping, procps
Section: admin
Priority: optional
Description: high-availability cluster manager for Linux
 Understudy moves services (processes, floating and virtual IP addresses,
 shared disks, LVM volume groups, NFS mounts) from a failed server to a
 healthy one, quickly, and never runs them twice. It is compatible with NEC
 CLUSTERPRO X where administrators touch it: the clp* commands, the CLP_*
 script variables, status names and defaults. It is configured with one
 YAML file; every heartbeat and control frame is authenticated.
 .
 This package holds the daemon (understudy.service), the understudy command
 and its clp* aliases, manual pages and shell completion.
EOF
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

mkdir -p "$output"
deb="$output/understudy_${version}_$arch.deb"
case "$compression" in none) z=(-Znone) ;; gzip) z=(-Zgzip -z6) ;; xz) z=(-Zxz) ;; esac
dpkg-deb --root-owner-group "${z[@]}" --build "$stage" "$deb" >&2
echo "$deb"
