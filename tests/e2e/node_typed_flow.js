// CreateFlow, UpdateFlow and DescribeFlow over gRPC from Node with the typed nested messages
// of the contract: @grpc/grpc-js with @grpc/proto-loader (pinned in tests/package.json),
// loading proto/appflow/v1/appflow.proto at run time, as any Node service would.
//
// usage: node node_typed_flow.js HOST:PORT SOURCE_DIR NAME
//
// Prints one JSON line: {"created": CreateFlowResponse, "updated": UpdateFlowResponse,
// "described": DescribeFlowResponse} (enums as their names, longs as strings), or
// {"error": {code, details}} and exits 1 when a call fails.
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [target, sourceDir, name] = process.argv.slice(2);
if (!target || !sourceDir || !name) {
  process.stderr.write("usage: node node_typed_flow.js HOST:PORT SOURCE_DIR NAME\n");
  process.exit(2);
}
const def = protoLoader.loadSync("appflow/v1/appflow.proto", {
  keepCase: false,
  enums: String,
  longs: String,
  oneofs: true,
  includeDirs: [path.join(sourceDir, "proto"), "/usr/share/gocode/src/github.com/gogo/googleapis"],
});
const appflow = grpc.loadPackageDefinition(def).appflow.v1;
const client = new appflow.AppFlowService(target, grpc.credentials.createInsecure());

// Every nested member is a typed field of its own message: S3 properties, operators, enums.
const flow = {
  flowName: name,
  triggerConfig: {
    triggerType: "TRIGGER_TYPE_SCHEDULED",
    triggerProperties: { scheduled: { scheduleExpression: "rate(1hours)", scheduleOffset: 0 } },
  },
  sourceFlowConfig: {
    connectorType: "CONNECTOR_TYPE_S3",
    sourceConnectorProperties: { s3: { bucketName: "node-src", bucketPrefix: "in" } },
  },
  destinationFlowConfigList: [{
    connectorType: "CONNECTOR_TYPE_S3",
    destinationConnectorProperties: {
      s3: { bucketName: "node-dst", s3OutputFormatConfig: { fileType: "FILE_TYPE_PARQUET" } },
    },
  }],
  tasks: [{
    sourceFields: ["id", "name"],
    taskType: "TASK_TYPE_FILTER",
    connectorOperator: { s3: "S3_CONNECTOR_OPERATOR_PROJECTION" },
  }],
};

function call(method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + 10000 }, (err, resp) =>
      err ? reject(err) : resolve(resp));
  });
}

(async () => {
  try {
    const created = await call("CreateFlow", flow);
    const update = Object.assign({}, flow, { description: "updated from Node" });
    const updated = await call("UpdateFlow", update);
    const described = await call("DescribeFlow", { flowName: name });
    process.stdout.write(JSON.stringify({ created, updated, described }) + "\n");
    client.close();
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: { code: e.code, details: e.details } }) + "\n");
    client.close();
    process.exit(1);
  }
})();
