#!/usr/bin/env bash
# Fails when gen/ or the generated contract (proto/appflow/v1/appflow.proto) differs from what
# the generators make today of model/ and proto/: neither is ever edited by hand, and a model or
# proto change must come with its regenerated code.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fresh=$(mktemp -d)
trap 'rm -rf "$fresh" "$fresh.diff"' EXIT
"$root/scripts/gen.sh" "$fresh/gen" "$fresh/proto"
stale=0
diff -r "$root/gen" "$fresh/gen" >"$fresh.diff" 2>&1 || stale=1
diff "$root/proto/appflow/v1/appflow.proto" "$fresh/proto/appflow/v1/appflow.proto" \
  >>"$fresh.diff" 2>&1 || stale=1
if [ "$stale" -ne 0 ]; then
  head -40 "$fresh.diff"
  echo "gen/ or proto/appflow/v1/appflow.proto is stale or was edited by hand: run 'make gen'" \
    "and commit the result" >&2
  exit 1
fi
echo "gen/ and the generated proto match model/ and proto/"
