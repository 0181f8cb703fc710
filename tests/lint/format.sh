#!/usr/bin/env bash
# Fails when a C (or C++) file differs from what the committed .clang-format makes of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mapfile -t files < <(find src tests/unit -name '*.[ch]' -o -name '*.cc' | sort)
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
