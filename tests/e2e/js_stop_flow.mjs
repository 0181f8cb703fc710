// StopFlow with the AWS SDK for JavaScript v3 (@aws-sdk/client-appflow, pinned in
// tests/package.json and resolved from tests/node_modules).
//
// usage: node js_stop_flow.mjs ENDPOINT NAME...
//
// Calls StopFlow once per NAME, in order, and prints one JSON line per call (a NAME of
// --no-name calls it without flowName, and its line's input is null):
//   {"input", "ok", "flowArn", "flowStatus", "name", "httpStatusCode", "requestId", "message",
//    "attempts", "wireStatus", "wireRequestId", "wireErrorType"}
// name and message are the error's (null when the call succeeded); the first ones come from
// the SDK (the output or the error and its $metadata), the wire* ones from the raw HTTP
// response the SDK parsed (its status, x-amzn-RequestId and x-amzn-ErrorType headers). Exits 0 when every call
// got an answer from the service (success or a service error), 1 otherwise.
import { AppflowClient, StopFlowCommand } from "@aws-sdk/client-appflow";

const [endpoint, ...names] = process.argv.slice(2);
if (!endpoint || names.length === 0) {
  process.stderr.write("usage: node js_stop_flow.mjs ENDPOINT NAME...\n");
  process.exit(2);
}

const client = new AppflowClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxAttempts: 1,
});

// The raw HTTP response of the call in progress (calls run one at a time), recorded below the
// SDK's deserializer so the test can compare what the SDK reports with what was on the wire.
let raw = null;
client.middlewareStack.add(
  (next) => async (args) => {
    const out = await next(args);
    raw = { statusCode: out.response?.statusCode ?? null, headers: out.response?.headers ?? {} };
    return out;
  },
  { step: "deserialize", priority: "low", name: "recordRawResponse" },
);

function header(name) {
  if (raw === null) return null;
  for (const [k, v] of Object.entries(raw.headers)) {
    if (k.toLowerCase() === name) return v;
  }
  return null;
}

let failed = false;
for (const arg of names) {
  const name = arg === "--no-name" ? undefined : arg;
  const line = {
    input: name ?? null, ok: false, flowArn: null, flowStatus: null, name: null,
    httpStatusCode: null, requestId: null, message: null, attempts: null,
    wireStatus: null, wireRequestId: null, wireErrorType: null,
  };
  raw = null;
  try {
    const out = await client.send(
      new StopFlowCommand(name === undefined ? {} : { flowName: name }));
    Object.assign(line, {
      ok: true,
      flowArn: out.flowArn ?? null,
      flowStatus: out.flowStatus ?? null,
      httpStatusCode: out.$metadata?.httpStatusCode ?? null,
      requestId: out.$metadata?.requestId ?? null,
      attempts: out.$metadata?.attempts ?? null,
    });
  } catch (e) {
    const md = e.$metadata ?? {};
    Object.assign(line, {
      name: e.name ?? null,
      message: e.message ?? null,
      httpStatusCode: md.httpStatusCode ?? null,
      requestId: md.requestId ?? null,
      attempts: md.attempts ?? null,
    });
    // No HTTP status: the call never got a service answer (connection refused, bad reply).
    if (line.httpStatusCode === null) failed = true;
  }
  Object.assign(line, {
    wireStatus: raw?.statusCode ?? null,
    wireRequestId: header("x-amzn-requestid"),
    wireErrorType: header("x-amzn-errortype"),
  });
  process.stdout.write(JSON.stringify(line) + "\n");
}
client.destroy();
process.exitCode = failed ? 1 : 0;
