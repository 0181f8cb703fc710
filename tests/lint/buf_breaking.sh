#!/usr/bin/env bash
# Holds the contract to its first typed version: `buf breaking` (WIRE_JSON rules: field numbers,
# types, json_names and enum numbers, so both gRPC and AWS-JSON clients keep working) against
# the image in model/contract-baseline.json. Members may be added; none may be renumbered,
# retyped or removed without a reserved entry.
#
# usage: tests/lint/buf_breaking.sh            check proto/ against the baseline
#        tests/lint/buf_breaking.sh --write    (re)write the baseline from proto/ (a new
#                                              contract version: say why in the commit)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
buf="$root/tests/node_modules/.bin/buf"
googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
baseline="$root/model/contract-baseline.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/appflow" "$work/google"
cp -r "$root/proto/appflow/." "$work/appflow/"
cp -r "$googleapis/google/api" "$work/google/api"
cat > "$work/buf.yaml" <<'YAML'
version: v2
breaking:
  use: [WIRE_JSON]
YAML
cd "$work"
if [ "${1:-}" = "--write" ]; then
  "$buf" build --path appflow --exclude-source-info -o "$baseline"
  echo "buf breaking: wrote $baseline"
  exit 0
fi
"$buf" breaking --path appflow --against "$baseline"
echo "buf breaking: proto/appflow keeps every field, number, type and JSON name of the baseline"
