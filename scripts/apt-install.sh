#!/usr/bin/env bash
# Usage: scripts/apt-install.sh FILE=PACKAGE...
#
# Installs each Debian PACKAGE whose FILE is missing, in one apt-get run,
# and does nothing (not even `apt-get update`) when every FILE is present.
# Needs root when there is something to install.
set -euo pipefail

missing=()
for pair in "$@"; do
	file=${pair%%=*}
	pkg=${pair#*=}
	if [[ -z $file || -z $pkg || $file == "$pair" ]]; then
		echo "apt-install: bad argument '$pair', want FILE=PACKAGE" >&2
		exit 2
	fi
	[[ -e $file ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

# Deduplicate, keeping order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "apt-install: installing ${missing[*]}"
if [[ $(id -u) != 0 ]]; then
	echo "apt-install: not root; run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

for pair in "$@"; do
	file=${pair%%=*}
	if [[ ! -e $file ]]; then
		echo "apt-install: ${pair#*=} is installed but $file is still missing" >&2
		exit 1
	fi
done
