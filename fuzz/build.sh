#!/bin/sh
# Builds the libFuzzer targets (fuzz/fuzz_*.c) into BUILD_DIR (default build-fuzz/).
#
# clang, not the gcc of the main build: libFuzzer ships with clang (Debian: clang and
# libclang-rt-14-dev). The parsers are compiled straight from src/ rather than through CMake's
# appflowd_core, which drags in libgrpc and libmicrohttpd; the fuzzed code needs neither.
# Usage: fuzz/build.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-build-fuzz}
CC=${CC:-clang}
mkdir -p "$OUT/obj"

command -v "$CC" >/dev/null || { echo "fuzz/build.sh: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
CFLAGS="-std=gnu11 -g -O1 $SAN -I src -I gen/pbc -I gen/model $(pkg-config --cflags libpq sqlite3 libpcre2-8)"
WARN="-Wall -Wextra -Werror -Wno-missing-field-initializers"

# What the parsers and the service need, read from CMakeLists.txt's source lists (appflowd_core,
# af_common, GEN_PBC_SOURCES) so a new core file needs no edit here; minus the files that link
# gRPC or libmicrohttpd, which no target calls. The stores come along (the targets use the
# memory store), and with them SQLite, libpq and OpenSSL (ListFlows tokens are HMACs).
NETWORK="src/admin/server.c src/bridge/http.c src/bridge/observe.c src/bridge/sigv4.c src/grpc/health.c
         src/grpc/observe.c src/grpc/reflection.c
         src/grpc/server.c src/grpc/tls.c gen/pbc/grpc/health/v1/health.pb-c.c
         gen/pbc/grpc/reflection/v1/reflection.pb-c.c"
cmake_sources() {
  awk '/^add_library\((appflowd_core|af_common|af_gen_model) STATIC/ || /^set\(GEN_PBC_SOURCES/ { on = 1 }
       on { for (i = 1; i <= NF; i++) if ($i ~ /^(src|\$\{GEN\})\/.*\.c\)?$/) {
              f = $i; sub(/\)$/, "", f); sub(/^\$\{GEN\}/, "gen", f); print f } }
       on && /\)$/ { on = 0 }' CMakeLists.txt
}
SRC=""
GEN=""
for f in $(cmake_sources); do
  case " $(echo $NETWORK) " in *" $f "*) continue ;; esac
  case $f in gen/*) GEN="$GEN $f" ;; *) SRC="$SRC $f" ;; esac
done
[ -n "$SRC" ] && [ -n "$GEN" ] || { echo "fuzz/build.sh: no sources found in CMakeLists.txt" >&2; exit 1; }
# gen/ is compiled as CMake compiles af_gen_pbc: without our warnings (it is protoc-c's code).

# The catalogs' data (data/connectors.json, data/entities.json), which src/bridge/catalog_load.c
# links as af_data_connectors and af_data_entities: CMake generates these C arrays in its build
# directory rather than listing them as sources, so they are generated here the same way, with
# cmake/embed.cmake, and compiled like gen/ (generated code, without our warnings).
command -v cmake >/dev/null || { echo "fuzz/build.sh: cmake not found (it embeds data/*.json)" >&2; exit 1; }
mkdir -p "$OUT/embed"
for doc in connectors entities; do
  cmake -DIN="data/$doc.json" -DOUT="$OUT/embed/data_$doc.c" -DNAME="af_data_$doc" \
    -P cmake/embed.cmake
  GEN="$GEN $OUT/embed/data_$doc.c"
done

# Instrumented for coverage (fuzzer-no-link), compiled in parallel; objects named by path.
pids=""
OBJS=""
for f in $SRC $GEN; do
  case $f in "$OUT"/*) n=${f#"$OUT"/} ;; *) n=$f ;; esac
  o="$OUT/obj/$(echo "$n" | tr / _).o"
  OBJS="$OBJS $o"
  case $f in src/*) w=$WARN ;; *) w="" ;; esac
  $CC $CFLAGS $w -fsanitize=fuzzer-no-link -c "$f" -o "$o" &
  pids="$pids $!"
done
fail=0
for p in $pids; do wait "$p" || fail=1; done
[ $fail = 0 ] || { echo "fuzz/build.sh: compiling the sources failed" >&2; exit 1; }

for t in transcode http seed decode control; do
  $CC $CFLAGS $WARN -I fuzz -fsanitize=fuzzer "fuzz/fuzz_$t.c" $OBJS \
    -lprotobuf-c -ljansson -lsqlite3 -lpq -lpcre2-8 -lcrypto -lpthread -lm -o "$OUT/fuzz_$t"
done
echo "fuzz/build.sh: built $OUT/fuzz_transcode $OUT/fuzz_http $OUT/fuzz_seed $OUT/fuzz_decode $OUT/fuzz_control"
