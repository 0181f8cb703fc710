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
CFLAGS="-std=gnu11 -g -O1 $SAN -I src -I gen/pbc"
WARN="-Wall -Wextra -Werror -Wno-missing-field-initializers"

# What the four parsers need, and nothing that links gRPC or libmicrohttpd (http.c, server.c,
# health.c, reflection.c, tls.c stay out).
SRC="src/flows/arena.c src/flows/error.c src/flows/log.c src/flows/seed.c src/flows/service.c
     src/flows/table.c src/common/awsname.c src/common/file.c src/common/listen.c src/common/utf8.c
     src/bridge/transcode.c src/bridge/route.c src/grpc/decode.c src/grpc/status.c"
# gen/ is compiled as CMake compiles af_gen_pbc: without our warnings (it is protoc-c's code).
GEN="gen/pbc/appflow/v1/appflow.pb-c.c gen/pbc/google/api/annotations.pb-c.c
     gen/pbc/google/api/http.pb-c.c gen/pbc/google/protobuf/descriptor.pb-c.c
     gen/pbc/google/protobuf/any.pb-c.c gen/pbc/google/protobuf/duration.pb-c.c
     gen/pbc/google/rpc/status.pb-c.c gen/pbc/google/rpc/error_details.pb-c.c"

# Instrumented for coverage (fuzzer-no-link), compiled in parallel; objects named by path.
pids=""
for f in $SRC $GEN; do
  o="$OUT/obj/$(echo "$f" | tr / _).o"
  case $f in src/*) w=$WARN ;; *) w="" ;; esac
  $CC $CFLAGS $w -fsanitize=fuzzer-no-link -c "$f" -o "$o" &
  pids="$pids $!"
done
fail=0
for p in $pids; do wait "$p" || fail=1; done
[ $fail = 0 ] || { echo "fuzz/build.sh: compiling the sources failed" >&2; exit 1; }

for t in transcode http seed decode; do
  $CC $CFLAGS $WARN -I fuzz -fsanitize=fuzzer "fuzz/fuzz_$t.c" "$OUT"/obj/*.o \
    -lprotobuf-c -ljansson -lpthread -lm -o "$OUT/fuzz_$t"
done
echo "fuzz/build.sh: built $OUT/fuzz_transcode $OUT/fuzz_http $OUT/fuzz_seed $OUT/fuzz_decode"
