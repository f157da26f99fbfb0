#!/usr/bin/env bash
# Usage: packaging/deb/build.sh [--version DEBVERSION] [--out DIR] [--compress xz|gzip]
#        packaging/deb/build.sh --print-version
#        packaging/deb/build.sh --print-deb [--out DIR]
#
# Builds weft's Debian package with dpkg-deb into DIR (default dist/) and
# prints the .deb's path as its last line. Packages of other versions in
# DIR are removed. --print-deb prints the path it would write. The version is
# BASE~gitN.gHASH-1: BASE from packaging/deb/VERSION, N the number of
# commits, HASH the commit (+dirty when tracked files are modified), so
# that each commit's package is newer than the one before; outside a git
# tree it is BASE-1. --version replaces it (make check-packaging builds a
# newer one that way). The binaries carry the upstream part (without -1):
# weftd --version, weft version. The package is compressed with xz
# (smallest, ≈ 14 s here) unless --compress gzip (≈ 3 s) says otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pkg=$root/packaging
GO=${GO:-go}
version=
out=$root/dist
print_only=
compress=xz
while (($#)); do
	case $1 in
	--version) version=${2:?--version needs a value}; shift 2 ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--compress) compress=${2:?--compress needs xz or gzip}; shift 2 ;;
	--print-version) print_only=version; shift ;;
	--print-deb) print_only=deb; shift ;;
	*) echo "build-deb: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

if [[ -z $version ]]; then
	base=$(<"$pkg/deb/VERSION")
	if git -C "$root" rev-parse --verify -q HEAD >/dev/null 2>&1; then
		n=$(git -C "$root" rev-list --count HEAD)
		hash=$(git -C "$root" rev-parse --short=12 HEAD)
		dirty=
		[[ -z $(git -C "$root" status --porcelain --untracked-files=no) ]] || dirty=+dirty
		version=$base~git$n.g$hash$dirty-1
	else
		version=$base-1
	fi
fi
case $compress in
xz | gzip) ;;
*) echo "build-deb: --compress $compress: want xz or gzip" >&2; exit 2 ;;
esac
if [[ ! $version =~ ^[0-9][A-Za-z0-9.+~]*-[A-Za-z0-9.+~]+$ ]]; then
	echo "build-deb: version '$version' is not UPSTREAM-REVISION as Debian spells it" >&2
	exit 2
fi
upstream=${version%-*}
arch=$(dpkg --print-architecture)
deb=$out/weft_${version}_$arch.deb
case $print_only in
version) echo "$version"; exit 0 ;;
deb) echo "$deb"; exit 0 ;;
esac

case $arch in
amd64 | arm64) goarch=$arch ;;
*) echo "build-deb: no GOARCH known for Debian architecture $arch" >&2; exit 1 ;;
esac

work=$root/build/deb
stage=$work/root
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$out"

# The binaries: static (cgo off), stripped, without local paths.
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build -C "$root" -trimpath \
	-ldflags "-s -w -X main.version=$upstream -X github.com/weftos/weft/cmd/weft/cli.Version=$upstream" \
	-o "$work/bin/" ./cmd/weftd ./cmd/weft
install -D -m 0755 "$work/bin/weftd" "$stage/usr/bin/weftd"
install -D -m 0755 "$work/bin/weft" "$stage/usr/bin/weft"
# The in-tree drivers, static and stripped like the commands, with the
# SHA256SUMS weftd checks each against (drivers_dir in weftd.toml).
install -d -m 0755 "$stage/usr/lib/weft/drivers"
GO=$GO GOOS=linux GOARCH=$goarch bash "$root/scripts/build-drivers.sh" "$stage/usr/lib/weft/drivers" -trimpath -ldflags "-s -w"
chmod 0755 "$stage"/usr/lib/weft/drivers/*
chmod 0644 "$stage/usr/lib/weft/drivers/SHA256SUMS"

install -D -m 0644 "$pkg/systemd/weftd.service" "$stage/lib/systemd/system/weftd.service"

# The config is the one embedded in weftd, whose defaults are already the
# packaged layout (/var/lib/weft, /run/weft/weftd.sock): one text, kept
# equal to the code by daemon's tests.
install -d -m 0755 "$stage/etc/weft"
"$work/bin/weftd" --print-default-config >"$stage/etc/weft/weftd.toml"
chmod 0644 "$stage/etc/weft/weftd.toml"

# Manual pages made from the commands' own help, so they never disagree.
# roff: a backslash is \e, a line starting with . or ' is escaped with \&.
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'; }
manpage() { # NAME SECTION SUMMARY, the body (help text) on stdin
	printf '.TH %s %s "" "weft %s" "weft"\n' "${1^^}" "$2" "$upstream"
	printf '.SH NAME\n%s \\- %s\n' "$1" "$3"
	printf '.SH DESCRIPTION\n.nf\n'
	roff
	printf '.fi\n'
}
mkdir -p "$stage/usr/share/man/man8" "$stage/usr/share/man/man1"
{
	"$work/bin/weftd" --help | manpage weftd 8 "run a weft node"
	printf '.SH FILES\n.nf\n'
	roff <<-'EOF'
	/etc/weft/weftd.toml                  the configuration (a conffile)
	/var/lib/weft/                        the node's data: key, database, packages
	/run/weft/weftd.sock                  the control socket (group weft)
	/lib/systemd/system/weftd.service     the unit; its logs: journalctl -u weftd
	EOF
	printf '.fi\n.SH SEE ALSO\nweft(1), systemctl(1), journalctl(1)\n'
} | gzip -9n >"$stage/usr/share/man/man8/weftd.8.gz"
{
	"$work/bin/weft" help | manpage weft 1 "control a weft node"
	mapfile -t cmds < <("$work/bin/weft" help | awk '/^Commands:/ { c = 1; next } c && /^$/ { exit } c { print $1 }')
	for c in "${cmds[@]}"; do
		[[ $c == help ]] && continue
		printf '.SH "WEFT %s"\n.nf\n' "${c^^}"
		"$work/bin/weft" help "$c" | roff
		printf '.fi\n'
	done
	printf '.SH SEE ALSO\nweftd(8)\n'
} | gzip -9n >"$stage/usr/share/man/man1/weft.1.gz"

# Documentation: the changelog (this build's entry on top of the history
# in packaging/deb/changelog) and the copyright, with the licence of every
# Go module linked into the binaries.
doc=$stage/usr/share/doc/weft
install -d -m 0755 "$doc"
maintainer=$(sed -n 's/^Maintainer: //p' "$pkg/deb/control")
date=$(git -C "$root" log -1 --format=%aD 2>/dev/null || date -R)
{
	if ! head -1 "$pkg/deb/changelog" | grep -qF "($version)"; then
		printf 'weft (%s) unstable; urgency=medium\n\n' "$version"
		printf '  * Build of commit %s.\n\n' "$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
		printf ' -- %s  %s\n\n' "$maintainer" "$date"
	fi
	cat "$pkg/deb/changelog"
} | gzip -9n >"$doc/changelog.Debian.gz"
bash "$pkg/deb/copyright.sh" "$root" >"$doc/copyright"
install -D -m 0644 "$pkg/deb/lintian-overrides" "$stage/usr/share/lintian/overrides/weft"

# Control files.
install -m 0644 "$pkg/deb/conffiles" "$stage/DEBIAN/conffiles"
install -m 0755 "$pkg/deb/postinst" "$pkg/deb/prerm" "$pkg/deb/postrm" "$stage/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$pkg/deb/control" >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

# Every file root's; mtimes clamped to the commit's, so that two builds of
# one commit give the same package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group "-Z$compress" --build "$stage" "$deb" >/dev/null
find "$out" -maxdepth 1 -name "weft_*_$arch.deb" ! -path "$deb" -delete
echo "$deb"
