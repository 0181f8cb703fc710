#!/usr/bin/env bash
# Generates the contract and everything made from it: first scripts/gen_model.py writes
# proto/appflow/v1/appflow.proto and the model tables (gen/model/) from AppFlow's AWS model, then
# protoc writes protobuf-c for the server and nanopb for the client. `make gen` runs this into
# gen/ and proto/; the staleness test runs it into scratch folders and compares, so this script
# is the one definition of what gen/ and the generated proto hold.
#
# usage: scripts/gen.sh OUTDIR [PROTODIR]   (PROTODIR defaults to proto/)
set -euo pipefail
out=${1:?usage: gen.sh OUTDIR [PROTODIR]}
root=$(cd "$(dirname "$0")/.." && pwd)
protodir=${2:-$root/proto}
mkdir -p "$out" "$protodir"
out=$(cd "$out" && pwd)
protodir=$(cd "$protodir" && pwd)
# The hand-written protos (options, the stores' records) go with the generated one.
if [ "$protodir" != "$root/proto" ]; then
  cp -r "$root/proto/." "$protodir/"
fi
rm -rf "$out/pbc" "$out/nanopb" "$out/model"
mkdir -p "$out/pbc" "$out/nanopb"
/usr/bin/python3 "$root/scripts/gen_model.py" "$protodir" "$out"
googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
grpcproto=/usr/share/grpc-proto
wkt=/usr/include

# Our contract, how stores keep a flow's tags and runs (records.proto: the server's only), the
# emulator's control service (emulator.proto), and
# the standard protos the contract's generated code needs: google.api annotations
# (imported by the contract), google.rpc.Status + ErrorInfo (gRPC error details), and the
# gRPC health and reflection services (v1 only: v1alpha is the same on the wire).
server_protos=(
  appflow/v1/appflow.proto appflow/v1/options.proto appflowd/store/v1/records.proto
  appflowd/emulator/v1/emulator.proto
  google/api/annotations.proto google/api/http.proto google/protobuf/descriptor.proto
  google/rpc/status.proto google/rpc/error_details.proto
  google/protobuf/any.proto google/protobuf/duration.proto
  google/protobuf/struct.proto google/protobuf/timestamp.proto
  grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto
)
client_protos=(
  appflow/v1/appflow.proto google/protobuf/timestamp.proto
  google/rpc/status.proto google/rpc/error_details.proto
  google/protobuf/any.proto google/protobuf/duration.proto
)
incs=(-I "$protodir" -I "$googleapis" -I "$grpcproto" -I "$wkt")

protoc "${incs[@]}" --c_out="$out/pbc" "${server_protos[@]}"
# The client never reads HTTP annotations, and speaks only the RPCs whose messages
# client.options does not skip, so the Struct and Timestamp headers are left out too.
protoc "${incs[@]}" --plugin=protoc-gen-nanopb=/usr/bin/protoc-gen-nanopb \
  --nanopb_opt="-q -f $out/nanopb/appflow.options -x google/api/annotations.proto -x appflow/v1/options.proto" \
  --nanopb_out="$out/nanopb" "${client_protos[@]}"
# The descriptors server reflection serves: every service appflowd offers, with everything they
# import, and google.rpc.ErrorInfo so clients can show error details. Clients (grpcurl,
# buf curl) take field and JSON names from these.
protoc "${incs[@]}" --include_imports --include_source_info \
  --descriptor_set_out="$out/appflow.protoset" appflow/v1/appflow.proto appflow/v1/options.proto \
  appflowd/emulator/v1/emulator.proto \
  google/rpc/status.proto google/rpc/error_details.proto \
  grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto \
  grpc/reflection/v1alpha/reflection.proto
