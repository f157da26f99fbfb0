#!/usr/bin/env bash
# Usage: scripts/gofmt-check.sh
#
# Fails, listing them, if any Go file of the work tree is not gofmt'd:
# tracked and untracked files alike (ignored ones excepted) in a git work
# tree, every .go file otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -d '' -t files < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
else
	mapfile -d '' -t files < <(find . -name .git -prune -o -name '*.go' -type f -print0)
fi
# Files deleted from the work tree but still in the index are not ours to check.
existing=()
for f in ${files[@]+"${files[@]}"}; do
	[[ -f $f ]] && existing+=("$f")
done
((${#existing[@]} == 0)) && exit 0

gofmt=$(go env GOROOT)/bin/gofmt
bad=$(printf '%s\0' "${existing[@]}" | xargs -0 "$gofmt" -l)
if [[ -n $bad ]]; then
	echo "gofmt: these files need 'gofmt -w':" >&2
	echo "$bad" >&2
	exit 1
fi
