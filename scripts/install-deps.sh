#!/usr/bin/env bash
# Installs what building, running and testing appflowd need on Debian 12, and only what is
# missing, so `make run` and `make test` work on a fresh machine and cost nothing afterwards.
#
# usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail
want=${1:-build}

build_pkgs=(
  build-essential cmake pkg-config
  libgrpc-dev libabsl-dev protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev
  nanopb libnanopb-dev libjansson-dev libmicrohttpd-dev libssl-dev
  grpc-proto golang-github-gogo-googleapis-dev libsqlite3-dev libpq-dev libpcre2-dev
)
test_pkgs=(
  libcriterion-dev clang-format clang libclang-rt-14-dev
  python3-grpcio python3-protobuf protobuf-compiler-grpc
  awscli python3-boto3 python3-prometheus-client openssl postgresql
)

# make bench: the load drivers, nginx as the HTTP limit, the peers' runtimes, PostgreSQL (the
# stores suite's cluster and pgbench) and perf (it profiles what nears a target). The Go peers
# (bench/peers/go) build in GOPATH mode from Debian's Go packages alone: grpc-go, protobuf-go
# (and its APIv1 shim, which grpc-go and genproto import), genproto's google.rpc types, and
# the protoc plugins that generate their code at bench time.
bench_pkgs=(
  nghttp2-client wrk nginx-light
  python3-grpcio python3-protobuf protobuf-compiler-grpc
  postgresql linux-perf
  golang-go golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev
  protoc-gen-go protoc-gen-go-grpc
)

pkgs=("${build_pkgs[@]}")
case "$want" in
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${bench_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node and npm by command, not package: a machine's nodejs may come with its own npm, which
# Debian's npm package would conflict with.
if [ "$want" != build ]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm clients used by the tests (buf), pinned by tests/package-lock.json.
if [ "$want" != build ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  stamp="$root/tests/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$root/tests/package-lock.json" -nt "$stamp" ]; then
    echo "install-deps: npm ci in tests/"
    (cd "$root/tests" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
