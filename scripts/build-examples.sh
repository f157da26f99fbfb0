#!/usr/bin/env bash
# Usage: scripts/build-examples.sh OUTDIR
#
# Builds every example under examples/ into a package directory
# OUTDIR/NAME/: its manifest.json and metadata.json, and each module its
# manifest names (process_wasm_path, relative to the package root). The
# module at path /P.wasm is built from examples/NAME/P/ when that
# directory exists, else from examples/NAME/ itself (one module at most):
#   - C (*.c files): $CLANG (default clang) for wasm32-wasi, a reactor,
#     with sdk/c on the include path;
#   - Go (*.go files): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
# Anything else fails the build, naming the example: nothing is skipped.
# OUTDIR/NAME is made anew each time.
set -euo pipefail

outdir=${1:?usage: build-examples.sh OUTDIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
clang=${CLANG:-clang}
go=${GO:-go}
cflags=(--target=wasm32-wasi -O2 -std=c99 -Wall -Wextra -Werror -mbulk-memory -mexec-model=reactor -Wl,--strip-all -I "$root/sdk/c")

fail() {
	echo "build-examples: $*" >&2
	exit 1
}

# build_module SRCDIR OUT: one module from the C or Go files of SRCDIR.
build_module() {
	local src=$1 out=$2
	local cfiles=("$src"/*.c) gofiles=("$src"/*.go)
	[[ -e ${cfiles[0]} ]] || cfiles=()
	[[ -e ${gofiles[0]} ]] || gofiles=()
	if ((${#cfiles[@]} > 0 && ${#gofiles[@]} > 0)); then
		fail "$src has both C and Go files; which one builds the module?"
	elif ((${#cfiles[@]} > 0)); then
		"$clang" "${cflags[@]}" -o "$out" "${cfiles[@]}"
	elif ((${#gofiles[@]} > 0)); then
		GOOS=wasip1 GOARCH=wasm "$go" build -buildmode=c-shared -o "$out" "./$src"
	else
		fail "$src has neither C (*.c) nor Go (*.go) files"
	fi
}

n=0
for dir in examples/*/; do
	dir=${dir%/}
	name=${dir#examples/}
	for f in manifest.json metadata.json; do
		[[ -f $dir/$f ]] || fail "$dir has no $f"
	done
	mapfile -t paths < <(grep -o '"process_wasm_path"[[:space:]]*:[[:space:]]*"[^"]*"' "$dir/manifest.json" |
		sed 's/.*"\([^"]*\)"$/\1/' | awk '!seen[$0]++')
	((${#paths[@]} > 0)) || fail "$dir/manifest.json names no process_wasm_path"

	pkg=$outdir/$name
	rm -rf "$pkg"
	mkdir -p "$pkg"
	cp "$dir/manifest.json" "$dir/metadata.json" "$pkg/"
	own=""
	for p in "${paths[@]}"; do
		rel=${p#/}
		if [[ ! $rel =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.wasm$ || /$rel/ == */../* || /$rel/ == */./* ]]; then
			fail "$dir/manifest.json: process_wasm_path '$p' is not a clean relative path to a .wasm file"
		fi
		stem=${rel%.wasm}
		src=$dir
		if [[ -d $dir/$stem ]]; then
			src=$dir/$stem
		elif [[ -n $own ]]; then
			fail "$dir: both $own and $rel would be built from $dir; put one in $dir/$stem/"
		else
			own=$rel
		fi
		mkdir -p "$(dirname "$pkg/$rel")"
		build_module "$src" "$pkg/$rel"
		echo "build-examples: $name: $rel ($(wc -c <"$pkg/$rel") bytes)"
	done
	n=$((n + 1))
done
((n > 0)) || fail "no examples under examples/"
echo "build-examples: $n packages in $outdir"
