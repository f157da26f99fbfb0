#!/usr/bin/env bash
# Usage: scripts/generate.sh          regenerate the code under api/
#        scripts/generate.sh --check  fail if the code under api/ is not
#                                     what api/proto generates
#
# Compiles every .proto file under api/proto into Go (types with
# protoc-gen-go, Connect stubs with protoc-gen-connect-go for the control
# API's services, grpc-go stubs with protoc-gen-go-grpc for the driver
# protocol's), laid out by Go import path: api/weftv1/types.pb.go
# and so on. Generation always goes to a temporary directory first; then
# it either replaces the generated files under api/ (removing stale ones)
# or is compared with them. git is never consulted.
#
# The plugins are the pinned ones in bin/ (`make tools`); PROTOC and
# PROTO_INCLUDE (where google/protobuf/*.proto live) come from the Makefile.
set -euo pipefail

mode="write"
case ${1:-} in
'') ;;
--check) mode="check" ;;
*)
	echo "usage: generate.sh [--check]" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

module=github.com/weftos/weft
protoc=${PROTOC:-/usr/bin/protoc}
include=${PROTO_INCLUDE:-/usr/include}

mapfile -t protos < <(find api/proto -name '*.proto' | LC_ALL=C sort)
if ((${#protos[@]} == 0)); then
	echo "generate: no .proto files under api/proto" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Services of weft/v1 (the control API) get Connect stubs; services of
# weft/driver/v1 (go-plugin's gRPC) get grpc-go stubs. The two never mix,
# so api/weftv1 stays free of gRPC.
grpc=() connect=()
for p in "${protos[@]}"; do
	case $p in
	api/proto/weft/driver/*) grpc+=("$p") ;;
	*) connect+=("$p") ;;
	esac
done
"$protoc" \
	-I api/proto -I "$include" \
	--plugin=protoc-gen-go="$root/bin/protoc-gen-go" \
	--plugin=protoc-gen-connect-go="$root/bin/protoc-gen-connect-go" \
	--go_out="$tmp" --go_opt=module="$module" \
	--connect-go_out="$tmp" --connect-go_opt=module="$module" \
	"${connect[@]}"
if ((${#grpc[@]} > 0)); then
	"$protoc" \
		-I api/proto -I "$include" \
		--plugin=protoc-gen-go="$root/bin/protoc-gen-go" \
		--plugin=protoc-gen-go-grpc="$root/bin/protoc-gen-go-grpc" \
		--go_out="$tmp" --go_opt=module="$module" \
		--go-grpc_out="$tmp" --go-grpc_opt=module="$module" \
		"${grpc[@]}"
fi

# The generated files under DIR/api, one path a line, relative to DIR.
generated() { (cd "$1" && find api -type f \( -name '*.pb.go' -o -name '*.connect.go' \) | LC_ALL=C sort); }

if [[ $mode == write ]]; then
	generated . | while read -r f; do rm -f "$f"; done
	generated "$tmp" | while read -r f; do
		mkdir -p "$(dirname "$f")"
		cp "$tmp/$f" "$f"
		echo "generate: wrote $f"
	done
	exit 0
fi

fail=0
if ! diff <(generated "$tmp") <(generated .) >"$tmp/files.diff"; then
	echo "check-generate: generated files missing (<) or stale (>) under api/:" >&2
	grep -E '^[<>]' "$tmp/files.diff" >&2 || true
	fail=1
fi
while read -r f; do
	[[ -f $f ]] || continue
	if ! cmp -s "$tmp/$f" "$f"; then
		echo "check-generate: $f is not what api/proto generates:" >&2
		diff -u --label "$f (checked in)" --label "$f (generated)" "$f" "$tmp/$f" | head -40 >&2 || true
		fail=1
	fi
done < <(generated "$tmp")

if ((fail)); then
	echo "check-generate: FAILED: generated code is out of date; run 'make generate' and check in the result" >&2
	exit 1
fi
echo "check-generate: generated code under api/ is up to date"
