#!/usr/bin/env bash
# Usage: scripts/build-drivers.sh OUT [GO_BUILD_FLAGS...]
#
# Builds every in-tree driver (a main under plugins/cmd/NAME) into
# OUT/NAME and writes OUT/SHA256SUMS, the checksums weftd checks each
# binary against (drivers_dir in weftd.toml). Static binaries, like
# weftd's, so that the .deb's drivers need no libc.
set -euo pipefail

out=${1:?usage: build-drivers.sh OUT [GO_BUILD_FLAGS...]}
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mkdir -p "$out"
mapfile -t mains < <(find plugins/cmd -mindepth 1 -maxdepth 1 -type d 2>/dev/null | LC_ALL=C sort)
for m in "${mains[@]}"; do
	CGO_ENABLED=0 ${GO:-go} build "$@" -o "$out/$(basename "$m")" "./$m"
done
(cd "$out" && find . -maxdepth 1 -type f ! -name 'SHA256SUMS*' -printf '%f\n' | LC_ALL=C sort | xargs -r sha256sum >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
