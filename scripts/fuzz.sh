#!/usr/bin/env bash
# Usage: scripts/fuzz.sh FUZZTIME
#
# Finds every fuzz target in every package of the module and fuzzes each for
# FUZZTIME, a `go test -fuzztime` value: a count of executions (20000x) or a
# duration (60s). Runs them all, then fails if any failed, naming each one
# that did. A failing input is written by `go test` under the package's
# testdata/fuzz/; check it in so it stays a regression test.
#
# Counts are what CI uses. A duration races a bug in Go's fuzz coordinator
# (go.dev/issue/75804, fixed in Go 1.27): when the deadline passes while a
# worker is mid-call, the target fails with "context deadline exceeded" and
# no failing input. With a count there is no deadline to race.
#
# A target that is much slower per execution than the rest (one that
# writes to disk, say) says by how much with a directive on the line above
# its func, and is given that fraction of a count:
#
#	//weft:fuzzslow 20
#	func FuzzStateRoundTrip(f *testing.F) {
#
# runs 1000 executions where the others run 20000x. Durations are not
# divided.
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
dirs=()
while IFS=$'\t' read -r pkg dir files; do
	[[ -n $files ]] || continue
	for f in $files; do
		if grep -q '^func Fuzz' "$dir/$f"; then
			candidates+=("$pkg")
			dirs+=("$dir")
			break
		fi
	done
done <<<"$pkgs"

# budget DIR NAME prints the -fuzztime for one target.
budget() {
	local dir=$1 name=$2 slow
	if [[ $fuzztime =~ ^([0-9]+)x$ ]]; then
		slow=$(grep -h -B1 "^func ${name}(" "$dir"/*_test.go |
			sed -n 's|^//weft:fuzzslow \([1-9][0-9]*\)$|\1|p' | head -n1)
		if [[ -n $slow ]]; then
			echo "$(((BASH_REMATCH[1] + slow - 1) / slow))x"
			return
		fi
	fi
	echo "$fuzztime"
}

passed=0
failed=()
for i in "${!candidates[@]}"; do
	pkg=${candidates[$i]}
	dir=${dirs[$i]}
	if ! list=$("$go" test -list '^Fuzz' "$pkg"); then
		echo "$list"
		failed+=("$pkg (go test -list failed)")
		continue
	fi
	names=$(grep -E '^Fuzz' <<<"$list" || true)
	for name in $names; do
		t=$(budget "$dir" "$name")
		echo "fuzz: $pkg $name for $t"
		if "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg"; then
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
