#!/usr/bin/env bash
# Fails when gen/ differs from what the generators make of proto/ today: gen/ is never edited
# by hand, and a proto change must come with its regenerated code.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
"$root/scripts/gen.sh" "$fresh"
if ! diff -r "$root/gen" "$fresh" >"$fresh.diff" 2>&1; then
  head -40 "$fresh.diff"
  rm -f "$fresh.diff"
  echo "gen/ is stale or was edited by hand: run 'make gen' and commit the result" >&2
  exit 1
fi
rm -f "$fresh.diff"
echo "gen/ matches proto/"
