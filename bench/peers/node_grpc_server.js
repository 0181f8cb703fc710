// A peer for the benchmarks: StopFlow over gRPC, written the ordinary Node way, with
// @grpc/grpc-js and @grpc/proto-loader loading proto/appflow/v1/appflow.proto at run time
// (the versions pinned in tests/package.json, resolved from tests/node_modules).
//
// Same semantics as appflowd (bench/peers/stopflow.js): same validation, state machine,
// gRPC codes and messages, and grpc-status-details-bin carrying a google.rpc.Status whose
// ErrorInfo.reason is the AWS error type (encoded with protobufjs, proto-loader's own
// dependency, from Debian's google/rpc protos).
//
//   node bench/peers/node_grpc_server.js --port 0 --flows FILE
//
// Prints "node-grpc-js listening: port=N flows=M" on stderr when ready; SIGTERM or SIGINT
// stops it (exit 0). A bad seed file exits 2, a port in use exits 1.
"use strict";

const path = require("node:path");
const { createRequire } = require("node:module");
const { loadFlows, makeService, parseArgs, StopFlowError, DOMAIN } = require("./stopflow.js");

const WHO = "node-grpc-js";
const ROOT = path.resolve(__dirname, "..", "..");
const GOOGLEAPIS = "/usr/share/gocode/src/github.com/gogo/googleapis";
const testsRequire = createRequire(path.join(ROOT, "tests", "package.json"));
const grpc = testsRequire("@grpc/grpc-js");
const protoLoader = testsRequire("@grpc/proto-loader");
const protobuf = testsRequire("protobufjs");

const opts = parseArgs(process.argv.slice(2), WHO);
const table = loadFlows(opts.flows, WHO);
const service = makeService(table, { region: opts.region, account: opts.account, who: WHO });

const def = protoLoader.loadSync("appflow/v1/appflow.proto", {
  includeDirs: [path.join(ROOT, "proto"), GOOGLEAPIS],
  enums: String,
  defaults: true,
});
const { AppFlowService } = grpc.loadPackageDefinition(def).appflow.v1;

// google.rpc.Status and ErrorInfo for grpc-status-details-bin.
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (origin, target) =>
  target.startsWith("google/rpc/") ? path.join(GOOGLEAPIS, target)
    : protobuf.util.path.resolve(origin, target);
rpcRoot.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const RpcStatus = rpcRoot.lookupType("google.rpc.Status");
const ErrorInfo = rpcRoot.lookupType("google.rpc.ErrorInfo");

function grpcError(e) {
  const info = ErrorInfo.encode(ErrorInfo.create({ reason: e.type, domain: DOMAIN })).finish();
  const status = RpcStatus.encode(RpcStatus.create({
    code: e.grpcCode,
    message: e.message,
    // protobufjs defines google.protobuf.Any itself, with the proto field name type_url.
    details: [{ type_url: "type.googleapis.com/google.rpc.ErrorInfo", value: info }],
  })).finish();
  const metadata = new grpc.Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(status));
  return { code: e.grpcCode, details: e.message, metadata };
}

function stopFlow(call, callback) {
  const name = call.request.flowName;
  try {
    if (name.includes("\0")) { // appflowd's gRPC decoder refuses these before the service
      throw new StopFlowError("SerializationException",
        "field flow_name contains a NUL byte, which no AppFlow string may hold");
    }
    const flowArn = service.stop(name);
    callback(null, { flowArn, flowStatus: "FLOW_STATUS_SUSPENDED" });
  } catch (e) {
    if (!(e instanceof StopFlowError)) throw e;
    callback(grpcError(e));
  }
}

const server = new grpc.Server();
server.addService(AppFlowService.service, { StopFlow: stopFlow });
server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(),
  (err, port) => {
    if (err) {
      process.stderr.write(`${WHO}: cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`${WHO} listening: port=${port} flows=${table.size}\n`);
  });

function shutdown() {
  const force = setTimeout(() => { server.forceShutdown(); process.exit(0); }, 2000);
  force.unref();
  server.tryShutdown(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
