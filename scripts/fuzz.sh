#!/usr/bin/env bash
# Usage: scripts/fuzz.sh FUZZTIME
#
# Finds every fuzz target in every package of the module and fuzzes each for
# FUZZTIME (a `go test -fuzztime` value, e.g. 3s or 1000x). Runs them all,
# then fails if any failed, naming each one that did. A failing input is
# written by `go test` under the package's testdata/fuzz/; check it in so it
# stays a regression test.
set -euo pipefail

fuzztime=${1:?usage: fuzz.sh FUZZTIME}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
go=${GO:-go}

# Only packages with a test file that declares a Fuzz function are asked
# for their list: `go test -list` compiles the test binary, which is slow
# to do for every package.
pkgs=$("$go" list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./...)
candidates=()
while IFS=$'\t' read -r pkg dir files; do
	[[ -n $files ]] || continue
	for f in $files; do
		if grep -q '^func Fuzz' "$dir/$f"; then
			candidates+=("$pkg")
			break
		fi
	done
done <<<"$pkgs"

passed=0
failed=()
for pkg in ${candidates[@]+"${candidates[@]}"}; do
	if ! list=$("$go" test -list '^Fuzz' "$pkg"); then
		echo "$list"
		failed+=("$pkg (go test -list failed)")
		continue
	fi
	names=$(grep -E '^Fuzz' <<<"$list" || true)
	for name in $names; do
		echo "fuzz: $pkg $name for $fuzztime"
		if "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
			passed=$((passed + 1))
		else
			failed+=("$pkg $name")
		fi
	done
done

if ((${#failed[@]} > 0)); then
	for t in "${failed[@]}"; do
		echo "fuzz: FAILED $t" >&2
	done
fi
echo "fuzz: $passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
