"""appflowctl, the C client (nanopb on gRPC core), against a real appflowd: AWS CLI-style
output on success, `An error occurred (<Type>) when calling the <Operation> operation: <message>`
on service errors (exit 1), usage errors and local limits (exit 2), unreachable servers; StopFlow
with its positional NAME, and every other operation from --cli-input-json and member flags
(create, describe, list, update, tags, delete, an operation appflowd does not serve)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2

NAME_256 = "n" * 255 + "9"
FLOWS = [
    h.flow("cli_sched_active", "Scheduled", "Active", description="for the cli"),
    h.flow("cli_event_active", "Event", "Active"),
    h.flow("cli_errored", "Event", "Errored"),
    h.flow("cli_suspended", "Scheduled", "Suspended"),
    h.flow("cli_draft", "Scheduled", "Draft"),
    h.flow("cli_deprecated", "Event", "Deprecated"),
    h.flow("cli_ondemand", "OnDemand", "Active"),
    h.flow("cli_ondemand_suspended", "OnDemand", "Suspended"),
    h.flow(NAME_256, "Event", "Errored"),
    h.flow("cli.p!@#-_", "Scheduled", "Active"),
]


def ctl(*args, timeout=30, stdin=None):
    """Runs appflowctl; stdin (a str) is its standard input, else it reads nothing."""
    h.require_binaries("APPFLOWCTL")
    return subprocess.run([h.APPFLOWCTL, *args], capture_output=True, text=True, timeout=timeout,
                          **({"input": stdin} if stdin is not None else
                             {"stdin": subprocess.DEVNULL}))


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StopFlowCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels(n=8)
        cls.server = h.start_server(FLOWS + cls.sentinels.flows())
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.addr = f"127.0.0.1:{cls.server.port}"
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    def stop(self, name, *extra):
        return ctl("--server", self.addr, *extra, "stop-flow", name)

    def assertSuccess(self, name):
        r = self.stop(name)
        self.assertEqual(r.returncode, 0, f"stderr: {r.stderr}")
        self.assertEqual(r.stderr, "")
        out = json.loads(r.stdout, object_pairs_hook=lambda pairs: pairs)
        self.assertEqual(out, [("flowArn", f"arn:aws:appflow:us-east-1:000000000000:flow/{name}"),
                               ("flowStatus", "Suspended")])
        # Printed the way the AWS CLI prints JSON: 4-space indent, one member a line.
        self.assertEqual(r.stdout, json.dumps(dict(out), indent=4, ensure_ascii=False) + "\n")
        return r

    def server_message(self, name):
        """What the server answers over gRPC for name (for calls that change nothing)."""
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=10)
        code, details, reason, domain = h.error_parts(cm.exception)
        return reason, details

    def assertServiceError(self, name, aws_type, mentions=()):
        r = self.stop(name)
        self.assertEqual(r.returncode, 1, f"stdout {r.stdout!r} stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "")
        reason, message = self.server_message(name)
        self.assertEqual(reason, aws_type)
        self.assertEqual(
            r.stderr, f"An error occurred ({aws_type}) when calling the StopFlow operation: "
                      f"{message}\n")
        for m in mentions:
            self.assertIn(m, r.stderr)

    # ---- success ----

    def test_stop_scheduled_active(self):
        self.assertSuccess("cli_sched_active")
        self.assertSuccess("cli_sched_active")  # again: idempotent
        self.sentinels.barrier(self.server, self.stub)  # every earlier log line is read
        self.assertEqual(self.server.transitions_of("cli_sched_active"), ["FLOW_STATUS_ACTIVE"])

    def test_stop_event_active(self):
        self.assertSuccess("cli_event_active")

    def test_stop_errored(self):
        self.assertSuccess("cli_errored")

    def test_stop_suspended(self):
        self.assertSuccess("cli_suspended")

    def test_stop_256_character_name(self):
        self.assertSuccess(NAME_256)

    def test_stop_name_with_punctuation(self):
        self.assertSuccess("cli.p!@#-_")

    # ---- service errors ----

    def test_unknown_flow(self):
        self.assertServiceError("cli_nope", "ResourceNotFoundException", ("cli_nope",))

    def test_on_demand(self):
        self.assertServiceError("cli_ondemand", "UnsupportedOperationException", ("cli_ondemand",))
        self.assertServiceError("cli_ondemand_suspended", "UnsupportedOperationException")

    def test_draft_and_deprecated(self):
        self.assertServiceError("cli_draft", "ConflictException", ("cli_draft",))
        self.assertServiceError("cli_deprecated", "ConflictException", ("cli_deprecated",))

    def test_invalid_names(self):
        for name in ("a", "my flow", "flöw", "_x", "a/b", ""):
            with self.subTest(name=name):
                self.assertServiceError(name, "ValidationException", ("flowName",))

    def test_timeout_flag_with_live_server(self):
        r = self.stop("cli_nope2", "--timeout", "5")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("An error occurred (ResourceNotFoundException) when "
                                            "calling the StopFlow operation: "), r.stderr)

    # ---- local checks ----

    def test_257_character_name_refused_locally(self):
        # A value over a bound of the client's fixed fields is a local usage error (exit 2).
        name = "n" * 257
        r = self.stop(name)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("256", r.stderr)
        self.assertIn("StopFlow", r.stderr)
        self.assertIn("flowName", r.stderr)
        # Refused before any call: the same answer with nothing listening.
        r2 = ctl("--server", f"127.0.0.1:{closed_port()}", "--timeout", "2", "stop-flow", name)
        self.assertEqual(r2.returncode, 2, r2.stderr)
        self.assertIn("256", r2.stderr)


class UsageTest(unittest.TestCase):
    def assertUsageError(self, *args):
        r = ctl(*args)
        self.assertEqual(r.returncode, 2, f"{args}: stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "", args)
        self.assertTrue(r.stderr, args)
        return r

    def test_no_arguments(self):
        r = self.assertUsageError()
        self.assertIn("usage: appflowctl", r.stderr)

    def test_unknown_command(self):
        r = self.assertUsageError("frobnicate-flow", "x1")
        self.assertIn("usage: appflowctl", r.stderr)
        self.assertIn("frobnicate-flow", r.stderr)
        # Only stop-flow takes a positional NAME; a required member must be given.
        r = self.assertUsageError("start-flow", "x1")
        self.assertIn("usage: appflowctl", r.stderr)
        r = self.assertUsageError("describe-flow")
        self.assertIn("--flow-name", r.stderr)

    def test_stop_flow_argument_count(self):
        self.assertUsageError("stop-flow")
        self.assertUsageError("stop-flow", "a1", "a2")

    def test_bad_timeout(self):
        for t in ("abc", "0", "-1", "", "3601", "1s", "nan"):
            with self.subTest(timeout=t):
                r = self.assertUsageError("--timeout", t, "stop-flow", "x1")
                self.assertIn("--timeout", r.stderr)

    def test_unknown_option_and_missing_argument(self):
        self.assertUsageError("--bogus", "stop-flow", "x1")
        self.assertUsageError("--server")
        self.assertUsageError("stop-flow", "x1", "--timeout")

    def test_help_and_version(self):
        r = ctl("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: appflowctl", r.stdout)
        # Every operation of the model, in the AWS CLI's spelling.
        ops = r.stdout.split("operations:\n")[1].split()
        self.assertEqual(len(ops), 25, ops)
        for op in ("stop-flow", "create-flow", "describe-flow", "list-flows", "update-flow",
                   "delete-flow", "tag-resource", "untag-resource", "list-tags-for-resource",
                   "describe-connectors", "describe-flow-execution-records",
                   "reset-connector-metadata-cache", "update-connector-registration"):
            self.assertIn(op, ops)
        r = ctl("describe-flow", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--flow-name", r.stdout)
        r = ctl("delete-flow", "--help")
        self.assertIn("--[no-]force-delete", r.stdout)
        r = ctl("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^appflowctl \d+\.\d+\.\d+\n$")


class OperationsCliTest(unittest.TestCase):
    """Every other operation: AWS JSON from --cli-input-json (a file or stdin) and member flags
    in, AWS JSON out, typed members (enums, nested structures, lists, maps) both ways."""

    @classmethod
    def setUpClass(cls):
        cls.server = h.start_server([])
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.addr = f"127.0.0.1:{cls.server.port}"
        cls.dir = h.tempdir("appflowctl-e2e-")

    def run_ctl(self, *args, stdin=None):
        return ctl("--server", self.addr, *args, stdin=stdin)

    def ok(self, *args, stdin=None):
        """The parsed output of a call that must succeed, checked to be printed as the AWS CLI
        prints it (4-space indent, members in the order received)."""
        r = self.run_ctl(*args, stdin=stdin)
        self.assertEqual(r.returncode, 0, f"{args}: stderr {r.stderr!r}")
        self.assertEqual(r.stderr, "", args)
        out = json.loads(r.stdout)
        self.assertEqual(r.stdout, json.dumps(out, indent=4, ensure_ascii=False) + "\n")
        return out

    def service_error(self, operation, aws_type, *args, stdin=None):
        r = self.run_ctl(*args, stdin=stdin)
        self.assertEqual(r.returncode, 1, f"{args}: stdout {r.stdout!r} stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "")
        prefix = f"An error occurred ({aws_type}) when calling the {operation} operation: "
        self.assertTrue(r.stderr.startswith(prefix), r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        return r.stderr[len(prefix):-1]

    def write_json(self, name, doc):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        return path

    def create(self, name, kind="OnDemand", **members):
        flow = h.s3_flow(name, kind, **members)
        out = self.ok("create-flow", "--cli-input-json", self.write_json(f"{name}.json", flow))
        self.assertEqual(out["flowArn"], h.arn(name))
        self.assertIn(out["flowStatus"], ("Active", "Draft"))
        return flow

    def assertDescribes(self, flow, described):
        """Every member sent comes back, typed as sent: enums as AWS strings, nested
        structures, lists of structures, string lists and maps."""
        for member, value in flow.items():
            self.assertEqual(described.get(member), value, member)

    # ---- create, describe ----

    def test_create_from_file_then_describe(self):
        flow = self.create("ctl_created", "Scheduled", description="made by appflowctl",
                           tags={"team": "data", "env": "test"})
        out = self.ok("describe-flow", "--flow-name", "ctl_created")
        self.assertDescribes(flow, out)
        self.assertEqual(out["flowArn"], h.arn("ctl_created"))
        self.assertIn(out["flowStatus"], ("Active", "Draft"))
        # Timestamps as epoch seconds (numbers), as `aws --cli-timestamp-format wire` shows.
        for t in ("createdAt", "lastUpdatedAt"):
            self.assertIsInstance(out[t], (int, float), t)
            self.assertLess(abs(out[t] - time.time()), 3600 * 24 * 366 * 5, t)
        # The nested members in their wire types, not strings of them.
        self.assertEqual(out["tasks"][1]["taskProperties"]["SOURCE_DATA_TYPE"], "string")
        self.assertEqual(out["triggerConfig"]["triggerProperties"]["Scheduled"],
                         {"scheduleExpression": "rate(1hours)"})

    def test_create_with_file_uri_and_flag_override(self):
        # file:// as the AWS CLI takes it; a flag wins over the same member in the JSON.
        flow = h.s3_flow("ctl_json_name", description="from the json")
        path = self.write_json("override.json", flow)
        out = self.ok("create-flow", "--cli-input-json", "file://" + path,
                      "--flow-name", "ctl_flag_name", "--description", "from the flag")
        self.assertEqual(out["flowArn"], h.arn("ctl_flag_name"))
        out = self.ok("describe-flow", "--flow-name=ctl_flag_name")
        self.assertEqual(out["description"], "from the flag")
        self.service_error("DescribeFlow", "ResourceNotFoundException",
                           "describe-flow", "--flow-name", "ctl_json_name")

    def test_service_error_names_the_operation(self):
        msg = self.service_error("DescribeFlow", "ResourceNotFoundException",
                                 "describe-flow", "--flow-name", "ctl_never_made")
        self.assertIn("ctl_never_made", msg)
        self.create("ctl_twice")
        path = self.write_json("twice.json", h.s3_flow("ctl_twice"))
        self.service_error("CreateFlow", "ConflictException", "create-flow",
                           "--cli-input-json", path)

    # ---- list ----

    def test_list_flows_max_results(self):
        names = {f"ctl_listed_{i}" for i in range(3)}
        for n in names:
            self.create(n)
        seen, token, pages = [], None, 0
        while True:
            args = ["list-flows", "--max-results", "2"] + (["--next-token", token] if token else [])
            out = self.ok(*args)
            self.assertLessEqual(len(out.get("flows", [])), 2)
            seen += [f["flowName"] for f in out.get("flows", [])]
            pages += 1
            token = out.get("nextToken")
            if token is None:
                break
            self.assertLess(pages, 50)
        self.assertTrue(names <= set(seen), seen)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertGreaterEqual(pages, 2)
        one = self.ok("list-flows", "--max-results", "1")
        self.assertEqual(len(one["flows"]), 1)
        self.assertEqual(set(one["flows"][0]) >= {"flowArn", "flowName", "flowStatus",
                                                  "triggerType", "sourceConnectorType"}, True)

    def test_max_results_must_be_a_number(self):
        r = self.run_ctl("list-flows", "--max-results", "many")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--max-results", r.stderr)

    # ---- update ----

    def test_update_flow_from_stdin(self):
        self.create("ctl_updated", description="before")
        update = h.s3_flow("ctl_updated", description="after",
                           destinationFlowConfigList=[{
                               "connectorType": "S3",
                               "destinationConnectorProperties": {
                                   "S3": {"bucketName": "other", "bucketPrefix": "out"}}}])
        out = self.ok("update-flow", "--cli-input-json", "-", stdin=json.dumps(update))
        self.assertIn(out["flowStatus"], ("Active", "Draft"))
        described = self.ok("describe-flow", "--flow-name", "ctl_updated")
        self.assertDescribes(update, described)

    # ---- tags ----

    def test_tags(self):
        self.create("ctl_tagged", tags={"a": "1"})
        arn = h.arn("ctl_tagged")
        self.assertEqual(self.ok("list-tags-for-resource", "--resource-arn", arn),
                         {"tags": {"a": "1"}})
        tags = self.write_json("tags.json", {"tags": {"b": "2", "c": "three"}})
        self.assertEqual(self.ok("tag-resource", "--resource-arn", arn,
                                 "--cli-input-json", tags), {})
        self.assertEqual(self.ok("list-tags-for-resource", "--resource-arn", arn),
                         {"tags": {"a": "1", "b": "2", "c": "three"}})
        self.assertEqual(self.ok("untag-resource", "--cli-input-json", "-",
                                 stdin=json.dumps({"resourceArn": arn, "tagKeys": ["a", "c"]})),
                         {})
        self.assertEqual(self.ok("list-tags-for-resource", "--resource-arn", arn),
                         {"tags": {"b": "2"}})

    # ---- delete ----

    def test_delete_flow(self):
        self.create("ctl_deleted", "Scheduled")
        self.ok("start-flow", "--flow-name", "ctl_deleted")
        msg = self.service_error("DeleteFlow", "ConflictException", "delete-flow",
                                 "--flow-name", "ctl_deleted", "--no-force-delete")
        self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
        self.assertEqual(self.ok("delete-flow", "--flow-name", "ctl_deleted", "--force-delete"), {})
        self.service_error("DescribeFlow", "ResourceNotFoundException",
                           "describe-flow", "--flow-name", "ctl_deleted")

    # ---- runs ----

    def test_runs_records(self):
        r = self.run_ctl("describe-flow-execution-records", "--flow-name", "any_flow")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "An error occurred (ResourceNotFoundException) when calling the "
                                   "DescribeFlowExecutionRecords operation: Flow any_flow does "
                                   "not exist\n")

    # ---- local errors: before anything is sent ----

    def assertLocal(self, args, *mentions, stdin=None):
        """Exit 2 naming what is wrong, and the same with nothing listening: refused locally."""
        for server in (self.addr, f"127.0.0.1:{closed_port()}"):
            r = ctl("--server", server, "--timeout", "2", *args, stdin=stdin)
            self.assertEqual(r.returncode, 2, f"{args}: stderr {r.stderr!r}")
            self.assertEqual(r.stdout, "")
            for m in mentions:
                self.assertIn(m, r.stderr)

    def test_bound_of_a_fixed_field(self):
        self.assertLocal(["describe-flow", "--flow-name", "f" * 300], "flowName", "256", "300")
        flow = h.s3_flow("f" * 300)
        self.assertLocal(["create-flow", "--cli-input-json", "-"], "flowName", "256",
                         stdin=json.dumps(flow))

    def test_bound_inside_nested_and_callback_members(self):
        flow = h.s3_flow("ctl_bounds")
        flow["sourceFlowConfig"]["sourceConnectorProperties"]["S3"]["bucketName"] = "b" * 300
        self.assertLocal(["create-flow", "--cli-input-json", self.write_json("b1.json", flow)],
                         "sourceFlowConfig.sourceConnectorProperties.S3.bucketName", "252")
        flow = h.s3_flow("ctl_bounds")
        flow["tasks"][1]["destinationField"] = "d" * 2000  # tasks: a callback field
        self.assertLocal(["create-flow", "--cli-input-json", self.write_json("b2.json", flow)],
                         "tasks[1].destinationField", "1024")
        self.service_error("DescribeFlow", "ResourceNotFoundException",
                           "describe-flow", "--flow-name", "ctl_bounds")

    def test_json_that_does_not_fit_the_model(self):
        flow = h.s3_flow("ctl_misfit", tasks=[{"sourceFields": ["a"], "taskType": "Shuffle"}])
        self.assertLocal(["create-flow", "--cli-input-json", "-"], "tasks[0].taskType",
                         "Shuffle", stdin=json.dumps(flow))
        flow = h.s3_flow("ctl_misfit", colour="blue")
        self.assertLocal(["create-flow", "--cli-input-json", "-"], "colour",
                         stdin=json.dumps(flow))
        self.assertLocal(["create-flow", "--cli-input-json", "-"], "--cli-input-json",
                         stdin="{not json")
        self.assertLocal(["list-flows", "--cli-input-json", "-"], "maxResults",
                         stdin=json.dumps({"maxResults": "ten"}))

    def test_unknown_flag(self):
        self.assertLocal(["describe-flow", "--flow-name", "x1", "--bogus", "1"], "--bogus")
        # A member that is not a top-level scalar has no flag: it goes in the JSON.
        self.assertLocal(["create-flow", "--tasks", "[]"], "--tasks")
        self.assertLocal(["delete-flow", "--flow-name", "x1", "--force-delete=yes"],
                         "--force-delete")


class UnreachableTest(unittest.TestCase):
    def test_closed_port_fails_within_timeout(self):
        t0 = time.monotonic()
        r = ctl("--server", f"127.0.0.1:{closed_port()}", "--timeout", "2", "stop-flow", "x1",
                timeout=20)
        elapsed = time.monotonic() - t0
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("StopFlow", r.stderr)
        self.assertLess(elapsed, 2 + 3, "must give up within --timeout (plus start-up slack)")

    def test_silent_server_times_out(self):
        # Accepts connections but never speaks HTTP/2: only the deadline ends the call.
        lst = socket.socket()
        self.addCleanup(lst.close)
        lst.bind(("127.0.0.1", 0))
        lst.listen(16)
        conns = []
        stop = threading.Event()

        def accept():
            lst.settimeout(0.2)
            while not stop.is_set():
                try:
                    conns.append(lst.accept()[0])
                except (socket.timeout, OSError):
                    pass

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        try:
            t0 = time.monotonic()
            r = ctl("--server", f"127.0.0.1:{lst.getsockname()[1]}", "--timeout", "2",
                    "stop-flow", "x1", timeout=30)
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            t.join(5)
            for c in conns:
                c.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("StopFlow", r.stderr)
        self.assertGreaterEqual(elapsed, 1.5, "gave up before --timeout")
        self.assertLess(elapsed, 2 + 4, "did not give up at --timeout")


if __name__ == "__main__":
    unittest.main(verbosity=2)
