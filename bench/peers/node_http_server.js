// A peer for the benchmarks: StopFlow on the AWS REST-JSON wire, written the ordinary Node
// way with the built-in http module (no framework).
//
// POST /stop-flow {"flowName": ...} -> 200 {"flowArn":...,"flowStatus":"Suspended"}; errors
// carry the HTTP status of appflowd's error table, x-amzn-ErrorType and {"message": ...};
// every reply has Content-Type application/json and x-amzn-RequestId (crypto.randomUUID()).
// Same semantics as appflowd (bench/peers/stopflow.js), including its door's refusals:
// SerializationException for a body that is not a JSON object or a flowName that is not a
// string, 413 past 64 KiB, 404 UnknownOperationException, 405 MethodNotAllowedException.
// Idle keep-alive connections are closed after 30 s, as appflowd's door does.
//
//   node bench/peers/node_http_server.js --port 0 --flows FILE
//
// Prints "node-http listening: port=N flows=M" on stderr when ready; SIGTERM or SIGINT stops
// it (exit 0). A bad seed file exits 2, a port in use exits 1.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { loadFlows, makeService, parseArgs, StopFlowError } = require("./stopflow.js");

const WHO = "node-http";
const MAX_BODY = 64 * 1024;
const PATH = "/stop-flow";

const opts = parseArgs(process.argv.slice(2), WHO);
const table = loadFlows(opts.flows, WHO);
const service = makeService(table, { region: opts.region, account: opts.account, who: WHO });

function kind(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return { object: "an object", string: "a string", number: "a number", boolean: "a boolean" }[
    typeof v];
}

function reply(res, status, body, extra) {
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
    "x-amzn-RequestId": crypto.randomUUID(),
    ...extra,
  });
  res.end(body);
}

function replyError(res, e, extra) {
  reply(res, e.httpStatus, JSON.stringify({ message: e.message }),
    { "x-amzn-ErrorType": e.type, ...extra });
}

// The StopFlow operation on a whole body; returns the reply body or throws StopFlowError.
function stopFlow(body) {
  let req = {};
  if (body.trim() !== "") {
    try {
      req = JSON.parse(body);
    } catch (e) {
      throw new StopFlowError("SerializationException",
        `the request body is not valid JSON: ${e.message}`);
    }
  }
  if (req === null || typeof req !== "object" || Array.isArray(req)) {
    throw new StopFlowError("SerializationException",
      `the request body must be a JSON object, not ${kind(req)}`);
  }
  const name = req.flowName;
  if (name !== undefined && name !== null && typeof name !== "string") {
    throw new StopFlowError("SerializationException",
      `member flowName must be a string, not ${kind(name)}`);
  }
  if (typeof name === "string" && name.includes("\0")) {
    throw new StopFlowError("SerializationException",
      "the request body is not valid JSON: a string holds \\u0000, which appflowd does not accept");
  }
  const flowArn = service.stop(name);
  return JSON.stringify({ flowArn, flowStatus: "Suspended" });
}

const server = http.createServer((req, res) => {
  const path = req.url.split("?", 1)[0];
  if (path !== PATH) {
    req.resume();
    replyError(res, new StopFlowError("UnknownOperationException",
      `no operation at ${path}: appflowd serves AppFlow's REST-JSON routes, such as POST /stop-flow`));
    return;
  }
  if (req.method !== "POST") {
    req.resume();
    replyError(res, new StopFlowError("MethodNotAllowedException", `${PATH} takes POST only`),
      { Allow: "POST" });
    return;
  }
  const chunks = [];
  let size = 0, tooLarge = false;
  req.on("data", (c) => {
    size += c.length;
    if (size > MAX_BODY) tooLarge = true;
    else chunks.push(c);
  });
  req.on("end", () => {
    if (tooLarge) {
      replyError(res, new StopFlowError("RequestEntityTooLargeException",
        `the request body is over the ${MAX_BODY}-byte limit`));
      return;
    }
    try {
      reply(res, 200, stopFlow(Buffer.concat(chunks).toString("utf8")));
    } catch (e) {
      if (!(e instanceof StopFlowError)) throw e;
      replyError(res, e);
    }
  });
});
server.keepAliveTimeout = 30000;

server.on("error", (err) => {
  process.stderr.write(`${WHO}: cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  process.stderr.write(`${WHO} listening: port=${server.address().port} flows=${table.size}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
