#!/usr/bin/env bash
# Builds the Go peers (grpcserver: grpc-go; httpserver: net/http) into OUT_DIR, as bench/run.py
# does before running them:
#
#   bench/peers/go/build.sh OUT_DIR
#
# With Debian's Go packages only, in GOPATH mode (no modules, no module proxy): the GOPATH is
# OUT_DIR/gopath, which holds the peers' own packages (copied from here, as appflowpeer/...)
# and the code protoc-gen-go and protoc-gen-go-grpc generate from proto/appflow/v1/*.proto
# (appflowpeer/appflowpb), followed by Debian's /usr/share/gocode. Nothing generated is kept
# in the source tree. Prints OUT_DIR/grpcserver and OUT_DIR/httpserver when done; a missing
# tool or package exits 1 naming the Debian package (scripts/install-deps.sh bench installs
# them all).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
gocode=/usr/share/gocode
googleapis=$gocode/src/github.com/gogo/googleapis

missing=()
need_cmd() { command -v "$1" >/dev/null || missing+=("$1 (Debian package $2)"); }
need_file() { [ -e "$1" ] || missing+=("$1 (Debian package $2)"); }
need_cmd go golang-go
need_cmd protoc protobuf-compiler
need_cmd protoc-gen-go protoc-gen-go
need_cmd protoc-gen-go-grpc protoc-gen-go-grpc
need_file /usr/include/google/protobuf/descriptor.proto libprotobuf-dev
need_file "$googleapis/google/api/annotations.proto" golang-github-gogo-googleapis-dev
need_file "$gocode/src/google.golang.org/grpc/server.go" golang-google-grpc-dev
need_file "$gocode/src/google.golang.org/protobuf/proto/proto.go" golang-google-protobuf-dev
need_file "$gocode/src/github.com/golang/protobuf/proto/registry.go" \
  golang-github-golang-protobuf-1-5-dev
need_file "$gocode/src/google.golang.org/genproto/googleapis/rpc/errdetails" \
  golang-google-genproto-dev
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/peers/go/build.sh: missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "install them with: scripts/install-deps.sh bench" >&2
  exit 1
fi

gopath=$out/gopath
pkg=$gopath/src/appflowpeer
rm -rf "$pkg"
mkdir -p "$pkg"
cp -r "$here/flows" "$here/grpcserver" "$here/httpserver" "$pkg/"

# The protos carry no go_package: map each file to its Go package (M options). google/api's
# protos are only imported, and Debian's genproto has them compiled already.
maps=(
  appflow/v1/appflow.proto=appflowpeer/appflowpb
  appflow/v1/options.proto=appflowpeer/appflowpb
  google/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations
  google/api/http.proto=google.golang.org/genproto/googleapis/api/annotations
)
opts=()
for m in "${maps[@]}"; do
  opts+=("--go_opt=M$m" "--go-grpc_opt=M$m")
done
protoc -I "$root/proto" -I "$googleapis" -I /usr/include \
  --go_out="$gopath/src" --go-grpc_out="$gopath/src" "${opts[@]}" \
  appflow/v1/appflow.proto appflow/v1/options.proto

export GO111MODULE=off GOPROXY=off GOFLAGS='' GOPATH="$gopath:$gocode"
# The build cache is the user's (rebuilds take seconds); without a home, one in OUT_DIR.
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
  export GOCACHE=$out/gocache
fi
cd "$pkg"
go build -p 2 -o "$out/grpcserver" ./grpcserver
go build -p 2 -o "$out/httpserver" ./httpserver
echo "$out/grpcserver"
echo "$out/httpserver"
