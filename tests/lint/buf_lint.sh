#!/usr/bin/env bash
# `buf lint` (STANDARD rules) over proto/, run offline: buf gets the google/api protos from
# Debian's googleapis package through a scratch workspace, and lints only our files.
#
# usage: tests/lint/buf_lint.sh   (needs `npm ci` in tests/)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
buf="$root/tests/node_modules/.bin/buf"
googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$root/proto/appflow" "$work/appflow"
cp -r "$root/proto/appflowd" "$work/appflowd"
mkdir -p "$work/google"
cp -r "$googleapis/google/api" "$work/google/api"
cat > "$work/buf.yaml" <<'YAML'
version: v2
lint:
  use: [STANDARD]
  ignore: [google]
breaking:
  use: [FILE]
YAML
cd "$work"
"$buf" lint
echo "buf lint: proto/appflow and proto/appflowd pass the STANDARD rules"
