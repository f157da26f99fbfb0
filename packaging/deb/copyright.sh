#!/usr/bin/env bash
# Usage: packaging/deb/copyright.sh REPO
#
# Prints the package's debian/copyright (machine-readable format 1.0):
# weft's own paragraph, then one for Go and for every module linked into
# weftd and weft, with its licence (and NOTICE) as the module ships it.
# Apache-2.0 and MPL-2.0 point at /usr/share/common-licenses, as Debian
# asks; any other licence is quoted whole.
set -euo pipefail

root=${1:?usage: copyright.sh REPO}
GO=${GO:-go}

# A file's text as a paragraph's continuation lines.
indent() { sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /'; }

# license NAME-FOR-MESSAGES DIR: a License: field for the licence in DIR.
license() {
	local dir=$2 file
	file=$(find "$dir" -maxdepth 1 -type f \( -iname 'licen[cs]e*' -o -iname 'copying*' \) | sort | head -1)
	if [[ -z $file ]]; then
		echo "copyright: no licence file in $dir ($1)" >&2
		exit 1
	fi
	if grep -q 'Apache License' "$file" && grep -q 'Version 2.0' "$file"; then
		echo "License: Apache-2.0"
		echo " On Debian systems, the full text of the Apache License 2.0 is in"
		echo " /usr/share/common-licenses/Apache-2.0."
	elif grep -q 'Mozilla Public License' "$file" && grep -q 'Version 2.0' "$file"; then
		echo "License: MPL-2.0"
		echo " On Debian systems, the full text of the Mozilla Public License 2.0"
		echo " is in /usr/share/common-licenses/MPL-2.0."
	else
		local name=other
		if grep -q 'Permission is hereby granted, free of charge' "$file"; then
			name=Expat
		elif grep -q 'Neither the name' "$file"; then
			name=BSD-3-clause
		elif grep -q 'Redistribution and use in source and binary forms' "$file"; then
			name=BSD-2-clause
		elif grep -q 'Permission to use, copy, modify, and/or distribute' "$file"; then
			name=ISC
		fi
		echo "License: $name"
		indent <"$file"
	fi
	if [[ -f $dir/NOTICE ]]; then
		echo " ."
		echo " NOTICE:"
		echo " ."
		indent <"$dir/NOTICE"
	fi
}

cat <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: weft
Upstream-Contact: weft maintainers <maintainers@users.noreply.r-seed-ba10b1f2.example>
Source: https://github.com/weftos/weft
Comment: weftd and weft are Go programs, linked statically: they contain
 the Go standard library and the Go modules listed below, each under its
 own licence.

Files: *
Copyright: 2026 the weft authors
License: other
 The weft repository does not state a licence yet; until it does, all
 rights are reserved by the weft authors.

EOF

goroot=$("$GO" env GOROOT)
echo "Files: go/*"
echo "Copyright: The Go Authors"
license go "$goroot"
echo

CGO_ENABLED=0 "$GO" list -C "$root" -deps -f '{{with .Module}}{{.Path}} {{.Version}} {{.Dir}}{{end}}' ./cmd/weftd ./cmd/weft |
	sort -u | while read -r path version dir; do
	[[ $path == github.com/weftos/weft ]] && continue
	echo "Files: vendor/$path/*"
	# The copyright lines of the licence, else its authors in general.
	holders=$(find "$dir" -maxdepth 1 -type f \( -iname 'licen[cs]e*' -o -iname 'copying*' \) -exec grep -h -i -E '^[[:space:]]*copyright (\(c\) |©)?[0-9]' {} + |
		sed -E 's/^[[:space:]]*[Cc]opyright[[:space:]]+(\([cC]\)[[:space:]]+|©[[:space:]]*)?//' | sort -u || true)
	if [[ -z $holders ]]; then
		holders="the authors of $path"
	fi
	echo "Copyright: $(head -1 <<<"$holders")"
	tail -n +2 <<<"$holders" | sed 's/^/ /'
	echo "Comment: Go module $path $version"
	license "$path" "$dir"
	echo
done
