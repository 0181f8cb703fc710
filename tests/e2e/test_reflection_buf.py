"""Server reflection: buf curl (tests/node_modules/.bin/buf, pinned in tests/package.json)
discovers and calls appflowd from its address alone, with no .proto, over both reflection
protocols (grpc.reflection.v1 and v1alpha); then a raw Python reflection client (stubs
generated from Debian's grpc-proto) checks the answers one by one: list_services,
file_containing_symbol and file_by_filename (the file and its transitive imports), extensions,
errors as error_response that leave the stream usable, and many requests on one stream."""

import base64
import json
import os
import queue
import subprocess
import sys
import unittest

from google.protobuf import descriptor_pb2

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
R = P.reflection_pb2

PINNED_BUF = "1.75.0"
SERVICES = ["appflow.v1.AppFlowService", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
# Every operation of AppFlow's model (model/appflow-2020-08-23.json) is a method.
with open(os.path.join(h.SOURCE_DIR, "model", "appflow-2020-08-23.json"), encoding="utf-8") as f:
    APPFLOW_METHODS = sorted(json.load(f)["operations"])
assert len(APPFLOW_METHODS) == 25
METHODS = ["appflow.v1.AppFlowService/" + m for m in APPFLOW_METHODS] + [
           "grpc.health.v1.Health/Check",
           "grpc.health.v1.Health/Watch",
           "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
           "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]
NOT_FOUND, INVALID_ARGUMENT = 5, 3
HTTP_EXTENSION = 72295728  # google.api.http, an extension of google.protobuf.MethodOptions

FLOWS = [
    h.flow("buf_sched", "Scheduled", "Active"),
    h.flow("buf_event", "Event", "Errored"),
    h.flow("buf_v1", "Scheduled", "Active"),
    h.flow("buf_v1alpha", "Event", "Active"),
    h.flow("buf_ondemand", "OnDemand", "Active"),
    h.flow("buf_draft", "Scheduled", "Draft"),
]


arn = h.arn


def protoc_files(*protos):
    """{file name: FileDescriptorProto} of protos and everything they import, as protoc sees
    them (the reference the server's embedded descriptors must match)."""
    out = os.path.join(h.tempdir(), "set.pb")
    r = subprocess.run(["protoc", "-I", os.path.join(h.SOURCE_DIR, "proto"), "-I", h.GOOGLEAPIS,
                        "-I", "/usr/include", "--include_imports", "--descriptor_set_out=" + out,
                        *protos], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"protoc failed: {r.stderr}")
    with open(out, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    return {f.name: f for f in fds.file}


class BufCurlTest(unittest.TestCase):
    """buf curl by reflection alone."""

    @classmethod
    def setUpClass(cls):
        cls.buf = h.buf_path()
        cls.sentinels = h.Sentinels(n=8)
        cls.server = h.start_server(FLOWS + cls.sentinels.flows())
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.url = f"http://127.0.0.1:{cls.server.port}"
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    def curl(self, *args):
        argv = [self.buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": h.tempdir(),
               "BUF_CACHE_DIR": h.tempdir()}  # no proxy variables
        return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)

    def stop_flow(self, name, *extra):
        return self.curl(*extra, "-d", json.dumps({"flowName": name}),
                         f"{self.url}/appflow.v1.AppFlowService/StopFlow")

    def assertStopped(self, r, name):
        self.assertEqual(r.returncode, 0, f"stderr: {r.stderr}")
        out = json.loads(r.stdout, object_pairs_hook=lambda pairs: pairs)
        # JSON names from the descriptors' json_name: flowArn, flowStatus (AWS-style)
        self.assertEqual(out, [("flowArn", arn(name)), ("flowStatus", "FLOW_STATUS_SUSPENDED")])

    def assertBufError(self, r, code_name, code, message, reason):
        """buf prints the error as Connect's JSON on stderr and exits with code << 3."""
        self.assertEqual(r.returncode, code << 3, f"stdout {r.stdout!r} stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "")
        err = json.loads(r.stderr)
        self.assertEqual(err["code"], code_name)
        self.assertEqual(err["message"], message)
        self.assertEqual(len(err["details"]), 1, err)
        detail = err["details"][0]
        self.assertEqual(detail["type"], "google.rpc.ErrorInfo")
        # buf 1.75 shows the detail's type and its bytes (base64, unpadded); it adds a decoded
        # "debug" object only for types compiled into buf, which ErrorInfo is not. Decode the
        # bytes here; if a "debug" object is present, it must say the same.
        raw = detail["value"]
        info = S.error_details_pb2.ErrorInfo.FromString(
            base64.b64decode(raw + "=" * (-len(raw) % 4)))
        self.assertEqual((info.reason, info.domain), (reason, h.ERROR_DOMAIN))
        if "debug" in detail:
            self.assertEqual(detail["debug"].get("reason"), reason)
            self.assertEqual(detail["debug"].get("domain"), h.ERROR_DOMAIN)
        return err

    def test_list_services(self):
        r = self.curl("--list-services", self.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.split()), SERVICES, r.stdout)

    def test_list_methods(self):
        r = self.curl("--list-methods", self.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.split()), METHODS, r.stdout)

    def test_stop_flow(self):
        self.assertStopped(self.stop_flow("buf_sched"), "buf_sched")
        self.assertStopped(self.stop_flow("buf_event"), "buf_event")
        self.assertStopped(self.stop_flow("buf_sched"), "buf_sched")  # idempotent
        self.sentinels.barrier(self.server, self.stub)
        self.assertEqual(self.server.transitions_of("buf_sched"), ["FLOW_STATUS_ACTIVE"])
        self.assertEqual(self.server.transitions_of("buf_event"), ["FLOW_STATUS_ERRORED"])

    def test_error_on_demand(self):
        self.assertBufError(self.stop_flow("buf_ondemand"), "failed_precondition", 9,
                            h.aws_msg_on_demand("buf_ondemand"), "UnsupportedOperationException")

    def test_other_errors(self):
        self.assertBufError(self.stop_flow("buf_missing"), "not_found", 5,
                            h.aws_msg_not_found("buf_missing"), "ResourceNotFoundException")
        self.assertBufError(self.stop_flow("buf_draft"), "aborted", 10,
                            h.aws_msg_cannot_stop("buf_draft", "Draft"), "ConflictException")
        self.assertBufError(self.stop_flow("no good"), "invalid_argument", 3,
                            h.aws_msg_name_pattern("no good"), "ValidationException")

    def test_unknown_member_refused_by_buf(self):
        """The schema buf downloaded is the real one: a member it does not have is refused
        before anything is sent (a usage error, exit status below 8)."""
        r = self.curl("-d", '{"flowNom": "buf_sched"}',
                      f"{self.url}/appflow.v1.AppFlowService/StopFlow")
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(r.returncode, 8, r.stderr)
        self.assertIn("flowNom", r.stderr)

    def test_reflect_protocols(self):
        for proto, name in (("grpc-v1", "buf_v1"), ("grpc-v1alpha", "buf_v1alpha")):
            with self.subTest(protocol=proto):
                r = self.stop_flow(name, "-v", "--reflect-protocol", proto)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertStopped(r, name)
                pkg = proto.replace("grpc-", "")
                used = f"POST /grpc.reflection.{pkg}.ServerReflection/ServerReflectionInfo"
                other = "v1alpha" if pkg == "v1" else "v1."
                self.assertIn(used, r.stderr)
                self.assertNotIn(f"POST /grpc.reflection.{other}", r.stderr)
                r = self.curl("--reflect-protocol", proto, "--list-services", self.url)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(sorted(r.stdout.split()), SERVICES)

    def test_health_check_by_reflection(self):
        r = self.curl("-d", '{"service": "appflow.v1.AppFlowService"}',
                      f"{self.url}/grpc.health.v1.Health/Check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"status": "SERVING"})

    def test_pinned_version(self):
        r = subprocess.run([self.buf, "--version"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.stdout.strip(), PINNED_BUF, "tests/node_modules is stale: npm ci")


class Stream:
    """One ServerReflectionInfo stream driven in lockstep: ask() sends one request and waits
    for its response, so each answer is known to belong to its request."""

    def __init__(self, stub, timeout=20):
        self._q = queue.Queue()
        self._responses = stub.ServerReflectionInfo(iter(self._q.get, None), timeout=timeout)

    def ask(self, **fields):
        req = R.ServerReflectionRequest(**fields)
        self._q.put(req)
        resp = next(self._responses)
        return req, resp

    def close(self):
        self._q.put(None)
        return list(self._responses)  # the stream ends (OK) once the client is done


class RawReflectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.start_server(FLOWS)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = P.reflection_pb2_grpc.ServerReflectionStub(cls.channel)
        cls.appflow_files = protoc_files("appflow/v1/appflow.proto")
        cls.details_files = protoc_files("google/rpc/error_details.proto")

    def one(self, **fields):
        """One request on its own stream; returns the response."""
        st = Stream(self.stub)
        req, resp = st.ask(**fields)
        self.assertEqual(resp.original_request, req)
        self.assertEqual(st.close(), [])
        return resp

    def files(self, resp):
        self.assertEqual(resp.WhichOneof("message_response"), "file_descriptor_response", resp)
        return [descriptor_pb2.FileDescriptorProto.FromString(b)
                for b in resp.file_descriptor_response.file_descriptor_proto]

    def assertFiles(self, resp, first, expected):
        """The response holds `first` first and exactly the files of `expected` (the protoc
        reference), each identical to protoc's."""
        files = self.files(resp)
        self.assertEqual(files[0].name, first)
        self.assertEqual(sorted(f.name for f in files), sorted(expected))
        for f in files:
            f.ClearField("source_code_info")  # comments: kept or not, as the build chose
            self.assertEqual(f, expected[f.name], f"{f.name} differs from protoc's")

    def assertErrorResponse(self, resp, code, mentions):
        self.assertEqual(resp.WhichOneof("message_response"), "error_response", resp)
        self.assertEqual(resp.error_response.error_code, code, resp)
        self.assertIn(mentions, resp.error_response.error_message)

    def test_list_services(self):
        resp = self.one(list_services="")
        self.assertEqual(resp.WhichOneof("message_response"), "list_services_response")
        self.assertEqual(sorted(s.name for s in resp.list_services_response.service), SERVICES)

    def test_file_containing_service(self):
        resp = self.one(file_containing_symbol="appflow.v1.AppFlowService")
        self.assertEqual(sorted(self.appflow_files),
                         ["appflow/v1/appflow.proto", "appflow/v1/options.proto",
                          "google/api/annotations.proto", "google/api/http.proto",
                          "google/protobuf/descriptor.proto", "google/protobuf/timestamp.proto"])
        self.assertFiles(resp, "appflow/v1/appflow.proto", self.appflow_files)
        main = self.files(resp)[0]
        self.assertEqual(list(main.dependency), ["appflow/v1/options.proto",
                                                 "google/api/annotations.proto",
                                                 "google/protobuf/timestamp.proto"])
        svc = {s.name: s for s in main.service}["AppFlowService"]
        self.assertEqual(sorted(m.name for m in svc.method), APPFLOW_METHODS)
        m = {m.name: m for m in svc.method}["StopFlow"]
        self.assertEqual((m.input_type, m.output_type),
                         (".appflow.v1.StopFlowRequest", ".appflow.v1.StopFlowResponse"))
        msgs = {m.name: m for m in main.message_type}
        self.assertEqual([(f.name, f.json_name) for f in msgs["StopFlowResponse"].field],
                         [("flow_arn", "flowArn"), ("flow_status", "flowStatus")])

    def test_file_containing_other_symbols(self):
        for sym in ("appflow.v1.StopFlowRequest", "appflow.v1.FlowStatus",
                    "appflow.v1.AppFlowService.StopFlow", "appflow.v1.TriggerType"):
            with self.subTest(symbol=sym):
                self.assertFiles(self.one(file_containing_symbol=sym), "appflow/v1/appflow.proto",
                                 self.appflow_files)
        self.assertFiles(self.one(file_containing_symbol="google.rpc.ErrorInfo"),
                         "google/rpc/error_details.proto", self.details_files)
        files = self.files(self.one(file_containing_symbol="grpc.health.v1.Health"))
        self.assertEqual([f.name for f in files], ["grpc/health/v1/health.proto"])
        self.assertEqual(files[0].package, "grpc.health.v1")

    def test_file_by_filename(self):
        self.assertFiles(self.one(file_by_filename="appflow/v1/appflow.proto"),
                         "appflow/v1/appflow.proto", self.appflow_files)
        self.assertFiles(self.one(file_by_filename="google/rpc/error_details.proto"),
                         "google/rpc/error_details.proto", self.details_files)
        self.assertErrorResponse(self.one(file_by_filename="appflow/v1/nope.proto"), NOT_FOUND,
                                 "appflow/v1/nope.proto")

    def test_extensions(self):
        resp = self.one(all_extension_numbers_of_type="google.protobuf.MethodOptions")
        self.assertEqual(resp.WhichOneof("message_response"), "all_extension_numbers_response")
        r = resp.all_extension_numbers_response
        self.assertEqual(r.base_type_name, "google.protobuf.MethodOptions")
        self.assertIn(HTTP_EXTENSION, r.extension_number)
        resp = self.one(file_containing_extension=R.ExtensionRequest(
            containing_type="google.protobuf.MethodOptions", extension_number=HTTP_EXTENSION))
        self.assertEqual(self.files(resp)[0].name, "google/api/annotations.proto")
        self.assertErrorResponse(
            self.one(all_extension_numbers_of_type="appflow.v1.Nope"), NOT_FOUND,
            "appflow.v1.Nope")

    def test_unknown_symbol_then_stream_still_usable(self):
        st = Stream(self.stub)
        req, resp = st.ask(file_containing_symbol="appflow.v1.Nope")
        self.assertEqual(resp.original_request, req)
        self.assertErrorResponse(resp, NOT_FOUND, "appflow.v1.Nope")
        req, resp = st.ask(list_services="")
        self.assertEqual(resp.original_request, req)
        self.assertEqual(len(resp.list_services_response.service), len(SERVICES))
        req, resp = st.ask(file_containing_symbol="appflow.v1.AppFlowService")
        self.assertFiles(resp, "appflow/v1/appflow.proto", self.appflow_files)
        self.assertEqual(st.close(), [])

    def test_empty_request_is_invalid_argument(self):
        st = Stream(self.stub)
        _, resp = st.ask()
        self.assertErrorResponse(resp, INVALID_ARGUMENT, "empty request")
        _, resp = st.ask(list_services="")
        self.assertEqual(resp.WhichOneof("message_response"), "list_services_response")
        st.close()

    def test_many_requests_on_one_stream_in_order(self):
        asks = [dict(list_services=""),
                dict(file_containing_symbol="appflow.v1.StopFlowResponse"),
                dict(file_by_filename="google/api/http.proto"),
                dict(file_containing_symbol="no.such.Symbol"),
                dict(file_containing_symbol="google.rpc.ErrorInfo"),
                dict(file_by_filename="missing.proto")] * 5
        reqs = [R.ServerReflectionRequest(**a) for a in asks]
        # all written at once (pipelined), answered one for one, in order
        resps = list(self.stub.ServerReflectionInfo(iter(reqs), timeout=20))
        self.assertEqual(len(resps), len(reqs))
        for i, (req, resp) in enumerate(zip(reqs, resps)):
            self.assertEqual(resp.original_request, req, f"response {i}")
            want = ("error_response" if "missing" in str(req) or "no.such" in str(req)
                    else "list_services_response" if req.HasField("list_services")
                    else "file_descriptor_response")
            self.assertEqual(resp.WhichOneof("message_response"), want, f"response {i}")

    def test_v1_answers_like_v1alpha(self):
        v1 = P.reflection_v1_pb2
        stub = P.reflection_v1_pb2_grpc.ServerReflectionStub(self.channel)
        reqs = [v1.ServerReflectionRequest(list_services=""),
                v1.ServerReflectionRequest(file_containing_symbol="appflow.v1.AppFlowService"),
                v1.ServerReflectionRequest(file_containing_symbol="appflow.v1.Nope")]
        got = list(stub.ServerReflectionInfo(iter(reqs), timeout=20))
        alpha = list(self.stub.ServerReflectionInfo(
            iter([R.ServerReflectionRequest.FromString(r.SerializeToString()) for r in reqs]),
            timeout=20))
        self.assertEqual(len(got), 3)
        self.assertEqual([g.SerializeToString() for g in got],
                         [a.SerializeToString() for a in alpha])
        self.assertEqual(sorted(s.name for s in got[0].list_services_response.service), SERVICES)


if __name__ == "__main__":
    unittest.main(verbosity=2)
