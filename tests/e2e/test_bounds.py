"""Every constrained member of every operation, at each bound and one past it, through both
doors, generated from the AWS model in model/ (the file appflowd's tables are generated from),
so no member is skipped: a string's length, a number's value, a list's or map's entries, at any
depth (through lists and maps of structures).

For each case the request holds just that member (inside whatever structures lead to it): the
answer may well be a ValidationException for the members left out, so a case asserts only about
its own member: one past a bound, the message must hold AWS's words for that member's path and
bound; at the bound, it must not. The same request goes to the AWS door as JSON (a member the
model puts in the URI or the query string goes there) and to the gRPC door as the typed message.

A second, independent oracle: botocore's own parameter validation (which checks minimums, not
maximums) must refuse nothing appflowd accepts."""

import json
import os
import sys
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import botocore.session  # noqa: E402
import botocore.validate  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

with open(os.path.join(h.SOURCE_DIR, "model", "appflow-2020-08-23.json"), encoding="utf-8") as f:
    MODEL = json.load(f)
SHAPES = MODEL["shapes"]
MAX_DEPTH = 8
# A URI label the case does not test: an ARN of the right form.
LABEL = "arn:aws:appflow:us-east-1:000000000000:flow/bounds"


def value_of(shape_name, depth=0):
    """A small value of the shape, for list elements and map values."""
    s = SHAPES[shape_name]
    t = s["type"]
    if t == "string":
        return s["enum"][0] if "enum" in s else "a"
    if t in ("integer", "long"):
        return s.get("min", 1)
    if t == "double":
        return 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return 1700000000
    if t == "list":
        return []
    if t == "map":
        return {}
    return {}


def sized(shape_name, n):
    """A value of the shape whose size (length, value or entries) is n; None when the shape
    cannot have one (an enum-keyed map with fewer keys than n)."""
    s = SHAPES[shape_name]
    t = s["type"]
    if t == "string":
        return "a" * n
    if t in ("integer", "long"):
        return n
    if t == "list":
        return [value_of(s["member"]["shape"]) for _ in range(n)]
    if t == "map":
        key = SHAPES[s["key"]["shape"]]
        if "enum" in key:
            if n > len(key["enum"]):
                return None
            keys = key["enum"][:n]
        else:
            keys = [f"k{i}" for i in range(n)]
        return {k: value_of(s["value"]["shape"]) for k in keys}
    return None


def bound_words(shape_name, which, bound):
    t = SHAPES[shape_name]["type"]
    kind = "value" if t in ("integer", "long") else "length"
    rel = "less than or equal to" if which == "max" else "greater than or equal to"
    return f"Member must have {kind} {rel} {bound}"


def cases():
    """(operation, steps, shape, which, bound): steps lead from the input structure to the
    member: ("m", name) a member, ("l",) a list's first element, ("k",) a map's value."""
    out = []

    def walk(op, struct, steps, depth):
        if depth > MAX_DEPTH:
            return
        for name, m in SHAPES[struct]["members"].items():
            sn = m["shape"]
            s = SHAPES[sn]
            here = steps + [("m", name)]
            if s["type"] in ("string", "integer", "long", "list", "map") and "enum" not in s:
                for which in ("min", "max"):
                    if which in s:
                        out.append((op, here, sn, which, s[which]))
            if s["type"] == "structure":
                walk(op, sn, here, depth + 1)
            elif s["type"] == "list" and SHAPES[s["member"]["shape"]]["type"] == "structure":
                walk(op, s["member"]["shape"], here + [("l",)], depth + 1)
            elif s["type"] == "map" and SHAPES[s["value"]["shape"]]["type"] == "structure":
                if "enum" not in SHAPES[s["key"]["shape"]]:
                    walk(op, s["value"]["shape"], here + [("k",)], depth + 1)

    for op, o in MODEL["operations"].items():
        walk(op, o["input"]["shape"], [], 0)
    return out


def build(steps, leaf):
    """The nested request holding leaf at steps, and the member's AWS path."""
    def put(i):
        kind = steps[i][0]
        if i == len(steps) - 1:
            return {steps[i][1]: leaf}
        if kind == "m":
            return {steps[i][1]: put_container(i + 1)}
        raise AssertionError(steps)

    def put_container(i):
        kind = steps[i][0]
        if kind == "l":
            return [put(i + 1)]
        if kind == "k":
            return {"key1": put(i + 1)}
        return put(i)

    path = []
    for st in steps:
        if st[0] == "m":
            path.append(st[1])
        elif st[0] == "l":
            path.append("1.member")
        else:
            path.append("key1.member")
    return put(0), ".".join(path)


def split_http(op, req):
    """(method, target, body) for the AWS door, with URI and query members moved out."""
    o = MODEL["operations"][op]
    uri, query = o["http"]["requestUri"], []
    body = dict(req)
    for name, m in SHAPES[o["input"]["shape"]]["members"].items():
        loc = m.get("location")
        if loc == "uri":
            v = body.pop(name, LABEL)
            uri = uri.replace("{%s}" % m.get("locationName", name),
                              urllib.parse.quote(str(v), safe=""))
        elif loc == "querystring" and name in body:
            v = body.pop(name)
            for x in v if isinstance(v, list) else [v]:
                query.append((m.get("locationName", name), x))
    target = uri + ("?" + urllib.parse.urlencode(query) if query else "")
    return o["http"]["method"], target, body


class BoundsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.start_http_server([])
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.conn = h.http_connection(cls.server.http_port)
        cls.addClassCleanup(cls.conn.close)
        cls.chan = h.channel(cls.server.port)
        cls.addClassCleanup(cls.chan.close)
        cls.pb = h.stubs().appflow_pb2
        cls.stub = h.stubs().appflow_pb2_grpc.AppFlowServiceStub(cls.chan)
        session = botocore.session.get_session()
        cls.botocore_model = session.get_service_model("appflow")
        cls.cases = cases()

    def aws_message(self, op, req):
        method, target, body = split_http(op, req)
        r = h.aws_request(self.server.http_port, body, method=method, path=target, conn=self.conn)
        if r.status == 200:
            return ""
        self.assertIn(r.status, (400, 404, 409, 501), r)
        return r.message if r.error_type == "ValidationException" else ""

    def grpc_message(self, op, req):
        o = MODEL["operations"][op]
        msg = json_format.ParseDict(h.to_proto_json(req, o["input"]["shape"]),
                                    getattr(self.pb, o["input"]["shape"])())
        try:
            getattr(self.stub, op)(msg, timeout=10)
            return ""
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                return e.details()
            return ""

    def botocore_refuses(self, op, req, path):
        """Whether botocore's validator refuses req for the member at path (None when its
        model has no such operation or member: Debian's botocore predates some)."""
        try:
            shape = self.botocore_model.operation_model(op).input_shape
        except Exception:
            return None
        report = botocore.validate.ParamValidator().validate(req, shape)
        if not report.has_errors():
            return False
        text = report.generate_report()
        leaf = path.split(".")[-1]
        return leaf in text and ("Invalid length" in text or "Invalid value" in text or
                                 "Invalid range" in text)

    def test_every_constrained_member(self):
        self.assertGreater(len(self.cases), 100, "the model has more constrained members")
        checked = 0
        for op, steps, shape, which, bound in self.cases:
            past = bound + 1 if which == "max" else bound - 1
            if past < 0:
                continue
            for n, should_fail in ((bound, False), (past, True)):
                leaf = sized(shape, n)
                if leaf is None:
                    continue
                req, path = build(steps, leaf)
                words = bound_words(shape, which, bound)
                with self.subTest(op=op, path=path, size=n):
                    for door, message in (("aws", self.aws_message(op, req)),
                                          ("grpc", self.grpc_message(op, req))):
                        found = any(words in part and f"at '{path}'" in part
                                    for part in message.split("; "))
                        if should_fail:
                            self.assertTrue(found, f"{door}: {op} {path}={n}: no "
                                                   f"'{words}' in {message!r}")
                        else:
                            self.assertFalse(found, f"{door}: {op} {path}={n} refused: "
                                                    f"{message!r}")
                    # What appflowd accepts, botocore (which checks minimums) accepts too.
                    if not should_fail:
                        self.assertNotEqual(self.botocore_refuses(op, req, path), True,
                                            f"botocore refuses {op} {path}={n}, appflowd not")
                checked += 1
        self.assertGreater(checked, 200)


if __name__ == "__main__":
    unittest.main()
