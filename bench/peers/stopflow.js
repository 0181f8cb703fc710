// The StopFlow rules shared by the Node peers (node_grpc_server.js, node_http_server.js):
// the seed file, the name check, the state machine and the error model of appflowd
// (src/flows/service.c, src/flows/error.h), written the way a Node team would.
//
// One process, one thread: the Map needs no lock.
"use strict";

const fs = require("node:fs");

const NAME_MAX = 256;
const NAME_RE = /^[a-zA-Z0-9][\w!@#.-]+$/; // \w without the u flag: ASCII letters, digits, _
const DOMAIN = "appflow.amazonaws.com";

// The proto's enum numbers; the table holds trigger << 4 | status, a small int per flow.
const TRIGGERS = { Scheduled: 1, Event: 2, OnDemand: 3 };
const ON_DEMAND = 3;
const STATUSES = { Active: 1, Deprecated: 2, Deleted: 3, Draft: 4, Errored: 5, Suspended: 6 };
const STATUS_AWS = Object.fromEntries(Object.entries(STATUSES).map(([k, v]) => [v, k]));
const STATUS_PROTO = {
  1: "FLOW_STATUS_ACTIVE", 2: "FLOW_STATUS_DEPRECATED", 3: "FLOW_STATUS_DELETED",
  4: "FLOW_STATUS_DRAFT", 5: "FLOW_STATUS_ERRORED", 6: "FLOW_STATUS_SUSPENDED",
};
const ACTIVE = 1, ERRORED = 5, SUSPENDED = 6;

// AWS error type -> [HTTP status, gRPC code] (src/flows/error.h).
const ERRORS = {
  ValidationException: [400, 3],
  SerializationException: [400, 3],
  UnsupportedOperationException: [400, 9],
  ResourceNotFoundException: [404, 5],
  ConflictException: [409, 10],
  UnknownOperationException: [404, 12],
  MethodNotAllowedException: [405, 12],
  RequestEntityTooLargeException: [413, 8],
  InternalServerException: [500, 13],
};

class StopFlowError extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
    this.httpStatus = ERRORS[type][0];
    this.grpcCode = ERRORS[type][1];
  }
}

// Bytes outside printable ASCII, and the backslash, as \xNN (af_escape).
function escape(s) {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b)
      : "\\x" + b.toString(16).padStart(2, "0");
  }
  return out;
}

function validName(name) {
  return Buffer.byteLength(name, "utf8") <= NAME_MAX && NAME_RE.test(name);
}

// The seed file as a Map: a JSON array of CreateFlow requests in AWS JSON plus flowStatus
// (README "The seed file"), of which a StopFlow needs flowName, triggerConfig.triggerType and
// flowStatus. Exits 2 on a bad file, as appflowd does.
function loadFlows(path, who) {
  const die = (msg) => {
    process.stderr.write(`${who}: ${path}: ${msg}\n`);
    process.exit(2);
  };
  let flows;
  try {
    flows = JSON.parse(fs.readFileSync(path, "utf8"));
  } catch (e) {
    die(e.message);
  }
  if (!Array.isArray(flows)) die("expected a JSON array of flows");
  const table = new Map();
  flows.forEach((f, i) => {
    if (f === null || typeof f !== "object") die(`flow ${i}: not an object`);
    const { flowName: name, triggerConfig, flowStatus } = f;
    const triggerType = triggerConfig !== null && typeof triggerConfig === "object"
      ? triggerConfig.triggerType : undefined;
    if (typeof name !== "string" || !validName(name)) die(`flow ${i}: invalid flowName`);
    if (!(triggerType in TRIGGERS)) die(`flow ${i}: invalid triggerConfig.triggerType`);
    if (!(flowStatus in STATUSES)) die(`flow ${i}: invalid flowStatus`);
    if (table.has(name)) die(`flow ${i}: duplicate flowName ${name}`);
    table.set(name, (TRIGGERS[triggerType] << 4) | STATUSES[flowStatus]);
  });
  return table;
}

// A StopFlow service over a table: stop(name) returns the ARN or throws StopFlowError.
function makeService(table, { region = "us-east-1", account = "000000000000", who } = {}) {
  const arnPrefix = `arn:aws:appflow:${region}:${account}:flow/`;
  function stop(name) {
    if (name === undefined || name === null || name === "") {
      throw new StopFlowError("ValidationException",
        "1 validation error detected: Value null at 'flowName' failed to satisfy " +
        "constraint: Member must not be null");
    }
    if (Buffer.byteLength(name, "utf8") > NAME_MAX) {
      throw new StopFlowError("ValidationException",
        "1 validation error detected: Value at 'flowName' failed to satisfy " +
        `constraint: Member must have length less than or equal to ${NAME_MAX}`);
    }
    if (!NAME_RE.test(name)) {
      throw new StopFlowError("ValidationException",
        `1 validation error detected: Value '${escape(name)}' at 'flowName' failed to ` +
        "satisfy constraint: Member must satisfy regular expression pattern: " +
        "[a-zA-Z0-9][\\w!@#.-]+");
    }
    const v = table.get(name);
    if (v === undefined) {
      throw new StopFlowError("ResourceNotFoundException", `Flow ${name} does not exist`);
    }
    const trigger = v >> 4, status = v & 15;
    if (trigger === ON_DEMAND) {
      throw new StopFlowError("UnsupportedOperationException",
        `Flow ${name} is an on-demand flow: StopFlow applies only to scheduled and ` +
        "event-triggered flows");
    }
    if (status === ACTIVE || status === ERRORED) {
      table.set(name, (trigger << 4) | SUSPENDED);
      process.stderr.write(
        `${who}: info: flow ${name}: ${STATUS_PROTO[status]} -> FLOW_STATUS_SUSPENDED\n`);
    } else if (status !== SUSPENDED) {
      throw new StopFlowError("ConflictException",
        `Flow ${name} is in ${STATUS_AWS[status]} state and cannot be stopped: only Active ` +
        "or Errored flows can be");
    }
    return arnPrefix + name;
  }
  return { stop };
}

// --port N --flows FILE [--host H] [--region R] [--account A]
function parseArgs(argv, who) {
  const opts = { port: 0, host: "127.0.0.1", flows: null, region: "us-east-1",
    account: "000000000000" };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in opts) || i + 1 >= argv.length) {
      process.stderr.write(`${who}: usage: --port N --flows FILE [--host H] [--region R] ` +
        "[--account A]\n");
      process.exit(2);
    }
    opts[key] = argv[++i];
  }
  opts.port = Number(opts.port);
  if (!opts.flows || !Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    process.stderr.write(`${who}: --flows FILE is required and --port must be 0-65535\n`);
    process.exit(2);
  }
  return opts;
}

module.exports = { loadFlows, makeService, parseArgs, StopFlowError, DOMAIN };
