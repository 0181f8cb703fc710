#!/usr/bin/python3
"""The flow lifecycle's benchmark inputs: the flows it needs, the requests it sends, and the
replies appflowd gives, captured so the limits (bench/canned_server, nginx) answer the same
bytes. Used by bench/run.py; every function talks to a running appflowd over its two doors.

Requests are written as AWS JSON (what the AWS door takes) and packed for gRPC with Python's
protobuf from gen/appflow.protoset (the typed messages of proto/appflow/v1/appflow.proto), so
the two doors get the same flows.
"""
import datetime
import http.client
import json
import os
import re
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE = "/appflow.v1.AppFlowService/"
DESCRIBED = "bench_described"  # a scheduled Salesforce-to-S3 flow, ~1 KiB described
ON_DEMAND = "bench_ondemand"  # StartFlow's target: each call records a run
PAGE = 100  # ListFlows maxResults
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Connector settings in AWS's own shapes (SourceFlowConfig, DestinationFlowConfig, Task), as
# a Salesforce-to-S3 flow made in the console carries them: one destination and a projection
# task (Filter + PROJECTION), as AppFlow's rules want (docs/ARCHITECTURE.md).
SOURCE = {"connectorType": "Salesforce", "connectorProfileName": "salesforce-prod",
          "sourceConnectorProperties": {"Salesforce": {
              "object": "Account", "enableDynamicFieldUpdate": False,
              "includeDeletedRecords": False}},
          "incrementalPullConfig": {"datetimeTypeFieldName": "LastModifiedDate"}}
DESTINATION = {"connectorType": "S3", "destinationConnectorProperties": {"S3": {
    "bucketName": "appflow-bench-out", "bucketPrefix": "salesforce/accounts",
    "s3OutputFormatConfig": {"fileType": "PARQUET", "prefixConfig": {
        "prefixType": "PATH_AND_FILENAME", "prefixFormat": "DAY"},
        "aggregationConfig": {"aggregationType": "SingleFile"}}}}}
TASKS = [
    {"sourceFields": ["Id", "Name", "Industry", "AnnualRevenue", "LastModifiedDate"],
     "connectorOperator": {"Salesforce": "PROJECTION"}, "taskType": "Filter",
     "taskProperties": {}},
    {"sourceFields": ["Id"], "connectorOperator": {"Salesforce": "NO_OP"},
     "destinationField": "Id", "taskType": "Map",
     "taskProperties": {"DESTINATION_DATA_TYPE": "id", "SOURCE_DATA_TYPE": "id"}},
    {"sourceFields": ["Name"], "connectorOperator": {"Salesforce": "NO_OP"},
     "destinationField": "Name", "taskType": "Map",
     "taskProperties": {"DESTINATION_DATA_TYPE": "string", "SOURCE_DATA_TYPE": "string"}},
]


def flow_body(name, trigger):
    """A CreateFlow body (AWS JSON) for a Salesforce-to-S3 flow."""
    body = {"flowName": name, "description": "Salesforce accounts to S3, hourly.",
            "triggerConfig": trigger, "sourceFlowConfig": SOURCE,
            "destinationFlowConfigList": [DESTINATION], "tasks": TASKS,
            "tags": {"team": "data", "env": "bench"}}
    return body


def described_body():
    return flow_body(DESCRIBED, {"triggerType": "Scheduled", "triggerProperties": {"Scheduled": {
        "scheduleExpression": "rate(1hours)", "dataPullMode": "Incremental",
        "scheduleStartTime": 1767225600, "timezone": "America/New_York"}}})


def churn_body(name):
    """What the churn creates: an on-demand flow, Active at once (so delete needs no force)."""
    return flow_body(name, {"triggerType": "OnDemand"})


# ---- protobuf from AWS JSON ----

_POOL = None
_AWS_VALUES = {}  # enum full name -> {AWS string: enum value name}
AWS_VALUE_FIELD = 50001  # (appflow.v1.aws_value), proto/appflow/v1/options.proto


def _aws_value(options):
    """The (appflow.v1.aws_value) string in an EnumValueOptions, read from its wire bytes (the
    extension is not registered with this pool's options class), or None."""
    data, i = options.SerializeToString(), 0

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v
    while i < len(data):
        key = varint()
        kind = key & 7
        if kind == 0:
            varint()
        elif kind == 2:
            n = varint()
            if key >> 3 == AWS_VALUE_FIELD:
                return data[i:i + n].decode()
            i += n
        elif kind in (1, 5):
            i += 8 if kind == 1 else 4
        else:
            return None
    return None


def _index_enums(package, enums):
    for e in enums:
        _AWS_VALUES[f"{package}.{e.name}"] = {
            _aws_value(v.options): v.name for v in e.value if v.HasField("options")}


def _pool():
    global _POOL
    if _POOL is None:
        fds = descriptor_pb2.FileDescriptorSet()
        with open(os.path.join(ROOT, "gen", "appflow.protoset"), "rb") as f:
            fds.ParseFromString(f.read())
        _POOL = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            _POOL.Add(fd)
            _index_enums(fd.package, fd.enum_type)

            def nested(prefix, messages):
                for m in messages:
                    _index_enums(f"{prefix}.{m.name}", m.enum_type)
                    nested(f"{prefix}.{m.name}", m.nested_type)
            nested(fd.package, fd.message_type)
    return _POOL


def _message(name):
    desc = _pool().FindMessageTypeByName("appflow.v1." + name)
    return message_factory.MessageFactory(_POOL).GetPrototype(desc)()


def decode(message, data):
    """data parsed as appflow.v1.<message>; google.protobuf.message.DecodeError if it is not
    one."""
    m = _message(message)
    m.ParseFromString(data)
    return m


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _proto_value(field, v):
    """One AWS JSON value of field in protobuf's JSON mapping: an enum's AWS string becomes the
    value whose aws_value it is, epoch seconds an RFC 3339 time; messages member by member."""
    if field.type == field.TYPE_ENUM and isinstance(v, str):
        return _AWS_VALUES.get(field.enum_type.full_name, {}).get(v, v)
    if field.type == field.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _rfc3339(v) if isinstance(v, (int, float)) else v
        return _proto_dict(field.message_type, v)
    return v


def _proto_dict(desc, members):
    if not isinstance(members, dict):
        return members
    fields = {f.json_name: f for f in desc.fields}
    out = {}
    for k, v in members.items():
        f = fields.get(k)
        if f is None:
            out[k] = v
        elif f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            out[k] = {mk: _proto_value(vf, mv) for mk, mv in v.items()}
        elif f.label == f.LABEL_REPEATED and isinstance(v, list):
            out[k] = [_proto_value(f, x) for x in v]
        else:
            out[k] = _proto_value(f, v)
    return out


def to_proto(message, body):
    """The AWS JSON body as packed protobuf. The proto's json_names are AWS's member names, so
    only enum spellings (AWS strings -> the values carrying them as aws_value) and timestamps
    (AWS: epoch seconds) are converted, at every depth."""
    m = _message(message)
    json_format.ParseDict(_proto_dict(m.DESCRIPTOR, body), m)
    return m.SerializeToString()


def string_field(number, text):
    data = text.encode()
    n, out = len(data), bytearray([number << 3 | 2])
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


# ---- the two doors ----

def http_call(port, method, path, body=None):
    """(status, headers, body bytes) of one request to the AWS door."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def grpc_call(port, rpc, request):
    """The reply bytes of one gRPC call (raises grpc.RpcError on a status other than OK)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(SERVICE + rpc, request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        return call(request, timeout=30)


def _ok(status, body, what):
    if status != 200:
        raise RuntimeError(f"{what}: HTTP {status}: {body[:300]!r}")
    return body


# The Salesforce connection the flows read through (CreateFlow refuses a profile that does not
# exist, as AppFlow does).
PROFILE = {"connectorProfileName": "salesforce-prod", "connectorType": "Salesforce",
           "connectionMode": "Public", "connectorProfileConfig": {
               "connectorProfileProperties": {
                   "Salesforce": {"instanceUrl": "https://example.my.salesforce.com"}},
               "connectorProfileCredentials": {"Salesforce": {"accessToken": "bench-token"}}}}


def create_flows(http_port):
    """The flows the lifecycle rows act on (the 10,000 listed ones come from the seed file)."""
    status, _, reply = http_call(http_port, "POST", "/create-connector-profile", PROFILE)
    _ok(status, reply, "create the connector profile")
    for what, body in (("described", described_body()), ("on-demand", churn_body(ON_DEMAND))):
        status, _, reply = http_call(http_port, "POST", "/create-flow", body)
        _ok(status, reply, f"create {what} flow")


def capture(grpc_port, http_port, tmp):
    """Every request body and reference reply the rows need, as files in tmp; returns their
    paths by name. The replies are appflowd's own, so the limits answer the same bytes."""
    files = {}

    def put(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        files[name] = path

    put("describe.req", string_field(1, DESCRIBED))
    put("describe.grpc", grpc_call(grpc_port, "DescribeFlow", string_field(1, DESCRIBED)))
    put("list.grpc", grpc_call(grpc_port, "ListFlows", bytes([1 << 3, PAGE])))
    put("start.grpc", grpc_call(grpc_port, "StartFlow",
                                string_field(1, ON_DEMAND) + string_field(2, "bench-probe")))
    # The churn's CreateFlow request minus its flow_name, which grpcload puts in front.
    tail = to_proto("CreateFlowRequest", {k: v for k, v in churn_body("x").items()
                                          if k != "flowName"})
    put("create.tail", tail)
    put("create.grpc", grpc_call(grpc_port, "CreateFlow", string_field(1, "bench_probe") + tail))
    put("delete.grpc", grpc_call(grpc_port, "DeleteFlow", string_field(1, "bench_probe")))

    status, _, body = http_call(http_port, "POST", "/describe-flow", {"flowName": DESCRIBED})
    put("describe.json", _ok(status, body, "describe"))
    status, _, body = http_call(http_port, "POST", "/list-flows", {"maxResults": PAGE})
    put("list.json", _ok(status, body, "list"))
    status, _, body = http_call(http_port, "POST", "/start-flow",
                                {"flowName": ON_DEMAND, "clientToken": "bench-probe-http"})
    put("start.json", _ok(status, body, "start"))
    template = churn_body("@NAME@")
    put("create-template.json", json.dumps(template, separators=(",", ":")).encode())
    status, _, body = http_call(http_port, "POST", "/create-flow", churn_body("bench_probe"))
    put("create.json", _ok(status, body, "create"))
    status, _, body = http_call(http_port, "POST", "/delete-flow", {"flowName": "bench_probe"})
    put("delete.json", _ok(status, body, "delete"))
    return files


# ---- nginx, answering the captured bodies ----

CHUNK = 3000  # nginx refuses a config parameter over 4 KiB, escapes included


def nginx_locations(files):
    """nginx locations answering each lifecycle path with appflowd's captured body. A body over
    CHUNK bytes is assembled from `set` variables, each under nginx's parameter limit."""
    out = []
    for path, name in (("/describe-flow", "describe.json"), ("/list-flows", "list.json"),
                       ("/start-flow", "start.json"), ("/create-flow", "create.json"),
                       ("/delete-flow", "delete.json")):
        with open(files[name], "rb") as f:
            text = f.read().decode()
        sets, value = _nginx_body(path.strip("/").replace("-", "_"), text)
        out.append(_nginx_location(path, sets + [f"            return 200 \"{value}\";"]))
    return "\n".join(out)


# ---- the operations this round added, one fixed request each ----

RUNS = "bench_runs"  # three finished runs, for DescribeFlowExecutionRecords
UPDATED = "bench_updated"  # UpdateFlow's target, updated with its own definition each call
FLOW_ARN = "arn:aws:appflow:us-east-1:000000000000:flow/"  # appflowd's default region, account


def _quoted(text):
    """A URI label as the AWS SDKs send it: every byte but unreserved ones percent-encoded."""
    return "".join(c if c.isalnum() or c in "-._~" else "%%%02X" % ord(c) for c in text)


def operations():
    """The operations of this round's issues the operations suite measures, each with one fixed
    request whose reply does not change from call to call: (name = the RPC and the AWS
    operation, AWS method, AWS path, AWS JSON body or None, the gRPC request as AWS JSON).
    TagResource and UpdateFlow write (the same tags, the same definition) on every call."""
    arn = FLOW_ARN + DESCRIBED
    tags_path = "/tags/" + _quoted(arn)
    update = {k: v for k, v in flow_body(UPDATED, {"triggerType": "OnDemand"}).items()
              if k != "tags"}
    records = {"flowName": RUNS, "maxResults": 10}
    connectors = {"connectorTypes": ["Salesforce", "S3"]}
    profiles = {"connectorProfileNames": [PROFILE["connectorProfileName"]]}
    entities = {"connectorProfileName": PROFILE["connectorProfileName"],
                "connectorType": "Salesforce"}
    tags = {"tags": {"team": "data", "env": "bench"}}
    return [
        ("DescribeFlowExecutionRecords", "POST", "/describe-flow-execution-records", records,
         records),
        ("DescribeConnectors", "POST", "/describe-connectors", connectors, connectors),
        ("DescribeConnectorProfiles", "POST", "/describe-connector-profiles", profiles, profiles),
        ("ListConnectorEntities", "POST", "/list-connector-entities", entities, entities),
        ("ListTagsForResource", "GET", tags_path, None, {"resourceArn": arn}),
        ("TagResource", "POST", tags_path, tags, dict(tags, resourceArn=arn)),
        ("UpdateFlow", "POST", "/update-flow", update, update),
    ]


def create_operation_flows(http_port, timeout=30):
    """The flows the operations act on, beyond create_flows': an on-demand flow with three runs,
    read back until none is in progress (a run lasts appflowd's --run-duration), and the flow
    UpdateFlow updates."""
    for name in (RUNS, UPDATED):
        status, _, reply = http_call(http_port, "POST", "/create-flow", churn_body(name))
        _ok(status, reply, f"create {name}")
    for i in range(3):
        status, _, reply = http_call(http_port, "POST", "/start-flow", {"flowName": RUNS})
        _ok(status, reply, f"start {RUNS}")
    deadline = time.monotonic() + timeout
    while True:
        status, _, reply = http_call(http_port, "POST", "/describe-flow-execution-records",
                                     {"flowName": RUNS})
        runs = json.loads(_ok(status, reply, "describe the runs"))["flowExecutions"]
        if len(runs) == 3 and all(r["executionStatus"] != "InProgress" for r in runs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{RUNS}'s runs still in progress after {timeout} s: {reply!r}")
        time.sleep(0.05)  # polls a state, no guess at how long a run takes


def capture_operations(grpc_port, http_port, tmp):
    """Each operation's requests and appflowd's replies on both doors, as files in tmp: NAME.req
    and NAME.grpc (packed), NAME.json (the AWS body, absent without one) and NAME.reply.json.
    Returns {name: {file kind: path}}."""
    out = {}
    for name, method, path, body, grpc_body in operations():
        files = out[name] = {}

        def put(kind, data):
            files[kind] = os.path.join(tmp, f"op-{name}.{kind}")
            with open(files[kind], "wb") as f:
                f.write(data)

        request = to_proto(name + "Request", grpc_body)
        put("req", request)
        put("grpc", grpc_call(grpc_port, name, request))
        if body is not None:
            put("json", json.dumps(body, separators=(",", ":")).encode())
        status, _, reply = http_call(http_port, method, path, body)
        put("reply.json", _ok(status, reply, name))
    return out


def _nginx_location(path, lines):
    """An exact-match location answering JSON with a request id, its directives lines."""
    head = [f"        location = {path} {{", "            default_type application/json;",
            "            add_header x-amzn-RequestId 00000000-0000-4000-8000-000000000000;"]
    return "\n".join(head + lines + ["        }"])


def _nginx_body(var, text):
    """`set` lines holding text in chunks under nginx's parameter limit, and the variables'
    concatenation for `return`."""
    if "$" in text:
        raise RuntimeError(f"{var}: a '$' would be an nginx variable")
    chunks = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    esc = [c.replace("\\", "\\\\").replace("'", "\\'") for c in chunks]
    sets = [f"            set ${var}_{i} '{c}';" for i, c in enumerate(esc)]
    return sets, "".join(f"${{{var}_{i}}}" for i in range(len(esc)))


def nginx_operation_locations(captured):
    """nginx locations answering each operation with appflowd's captured body; the operations
    sharing a path (GET and POST /tags/ARN) are told apart by method."""
    by_path = {}
    for name, method, path, _, _ in operations():
        with open(captured[name]["reply.json"], "rb") as f:
            by_path.setdefault(path, []).append((method, name, f.read().decode()))
    out = []
    for path, answers in by_path.items():
        # nginx matches the URI decoded: /tags/arn%3A... is location /tags/arn:...
        decoded = re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), path)
        lines = []
        for method, name, text in answers:
            sets, value = _nginx_body(name.lower(), text)
            lines += sets
            lines.append(f"            if ($request_method = {method}) {{ return 200 \"{value}\"; }}")
        out.append(_nginx_location(decoded, lines + ["            return 405;"]))
    return "\n".join(out)
