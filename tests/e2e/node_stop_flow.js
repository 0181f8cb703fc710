// StopFlow over gRPC from Node: @grpc/grpc-js with @grpc/proto-loader (both pinned in
// tests/package.json, resolved from tests/node_modules), loading the contract
// (proto/appflow/v1/appflow.proto) at run time; nothing generated.
//
// usage: node node_stop_flow.js HOST:PORT SOURCE_DIR NAME...
//
// Calls StopFlow once per NAME, in order, on one channel, and prints one JSON line per call
// (a NAME of --no-name sends a request without flowName, and its line's input is null):
//   {"input", "ok", "flowArn", "flowStatus", "code", "codeName", "details",
//    "statusCode", "statusMessage", "detailTypes", "reason", "domain"}
// ok/flowArn/flowStatus are the response's (flowStatus as the enum value's name); code,
// codeName and details the error's as grpc-js reports them; statusCode, statusMessage,
// detailTypes, reason and domain come from the grpc-status-details-bin trailer, decoded here
// with protobufjs (google.rpc.Status holding a google.rpc.ErrorInfo), null when absent.
// Exits 0 when every call got an answer from the service (success or a service error),
// 1 when one failed some other way (unreachable server, deadline, undecodable details).
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const GOOGLEAPIS = "/usr/share/gocode/src/github.com/gogo/googleapis";

const [target, sourceDir, ...names] = process.argv.slice(2);
if (!target || !sourceDir || names.length === 0) {
  process.stderr.write("usage: node node_stop_flow.js HOST:PORT SOURCE_DIR NAME...\n");
  process.exit(2);
}
const includeDirs = [path.join(sourceDir, "proto"), GOOGLEAPIS];

// The contract, as any Node service would load it: camelCase members (keepCase false gives
// flowName), enums as their names.
const def = protoLoader.loadSync("appflow/v1/appflow.proto", {
  keepCase: false,
  enums: String,
  longs: String,
  defaults: true,
  oneofs: true,
  includeDirs,
});
const appflow = grpc.loadPackageDefinition(def).appflow.v1;

// google.rpc.Status and ErrorInfo, for grpc-status-details-bin. google/protobuf/* are
// protobufjs's bundled definitions; the rest resolve against includeDirs.
const root = new protobuf.Root();
root.resolvePath = (origin, target) => {
  for (const dir of includeDirs) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return protobuf.util.path.resolve(origin, target);
};
root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = root.lookupType("google.rpc.Status");
const ErrorInfo = root.lookupType("google.rpc.ErrorInfo");

const codeNames = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

function decodeDetails(err, line) {
  const values = err.metadata ? err.metadata.get("grpc-status-details-bin") : [];
  if (values.length === 0) return;
  const st = Status.decode(values[0]);
  line.statusCode = st.code;
  line.statusMessage = st.message;
  line.detailTypes = st.details.map((a) => a.type_url ?? a.typeUrl);
  for (const any of st.details) {
    if ((any.type_url ?? any.typeUrl) === "type.googleapis.com/google.rpc.ErrorInfo") {
      const info = ErrorInfo.decode(any.value);
      line.reason = info.reason;
      line.domain = info.domain;
    }
  }
}

function stopFlow(client, flowName) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + 10000);
    // proto2 presence: flowName "" is sent as a value; undefined leaves the field absent.
    const req = flowName === undefined ? {} : { flowName };
    client.StopFlow(req, { deadline }, (err, resp) => resolve({ err, resp }));
  });
}

async function main() {
  const client = new appflow.AppFlowService(target, grpc.credentials.createInsecure());
  let failed = false;
  for (const arg of names) {
    const name = arg === "--no-name" ? undefined : arg;
    const line = {
      input: name ?? null, ok: false, flowArn: null, flowStatus: null, code: null, codeName: null,
      details: null, statusCode: null, statusMessage: null, detailTypes: null, reason: null,
      domain: null,
    };
    const { err, resp } = await stopFlow(client, name);
    if (err) {
      Object.assign(line, { code: err.code, codeName: codeNames[err.code] ?? null,
                            details: err.details });
      try {
        decodeDetails(err, line);
      } catch (e) {
        line.decodeError = String(e);
        failed = true;
      }
      // Not an answer from the service: no details trailer (connection, deadline ...).
      if (line.reason === null) failed = true;
    } else {
      Object.assign(line, { ok: true, code: grpc.status.OK, codeName: "OK",
                            flowArn: resp.flowArn, flowStatus: resp.flowStatus });
    }
    process.stdout.write(JSON.stringify(line) + "\n");
  }
  client.close();
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exitCode = 1;
});
