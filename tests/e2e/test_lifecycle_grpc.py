"""The flow lifecycle over gRPC with Python grpcio stubs generated at test time: the story
(create -> start -> stop -> start -> delete refused -> delete forced -> gone), every error row
with its gRPC code (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS for a taken name, ABORTED for
the other conflicts, FAILED_PRECONDITION) and the AWS error type in the ErrorInfo of
grpc-status-details-bin; the connector settings as typed messages, times as
google.protobuf.Timestamp; and one flow seen through both doors."""

import datetime
import json
import os
import re
import sys
import time
import unittest

import grpc
from google.protobuf import json_format

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
C = grpc.StatusCode
arn = h.arn
ANY_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

ACTIVE, DRAFT, SUSPENDED = pb.FLOW_STATUS_ACTIVE, pb.FLOW_STATUS_DRAFT, pb.FLOW_STATUS_SUSPENDED
DEPRECATED = pb.FLOW_STATUS_DEPRECATED

FLOWS = [
    h.flow("seed_errored", "Scheduled", "Errored"),
    h.flow("seed_deprecated", "Event", "Deprecated"),
    h.flow("seed_suspended", "Event", "Suspended"),
    h.flow("seed_ondemand", "OnDemand", "Active"),
    h.flow("seed_event_active", "Event", "Active"),
    h.flow("seed_tagged", "Scheduled", "Suspended", tags={"team": "data"}),
]


def create_request(name, kind="OnDemand", **members):
    """A CreateFlowRequest for harness.s3_flow(name, kind, **members)."""
    return json_format.ParseDict(h.to_proto_json(h.s3_flow(name, kind, **members)),
                                 pb.CreateFlowRequest())


def struct_json(msg):
    """A typed message (or a repeated field of them) as AWS JSON."""
    if isinstance(msg, (list, tuple)) or hasattr(msg, "extend"):
        return [h.to_aws(m) for m in msg]
    return h.to_aws(msg)


class LifecycleGrpcTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.start_http_server(FLOWS)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    # ---- helpers ----

    def call(self, method, **fields):
        req = getattr(pb, f"{method}Request")(**fields)
        return getattr(self.stub, method)(req, timeout=10)

    def assertError(self, method, code, reason, mentions=(), request=None, **fields):
        """method(**fields) (or method(request)) fails with code and ErrorInfo reason, and a
        message containing each of mentions. Returns the message."""
        what = f"{method}({str(fields or request)[:200]})"

        def call():
            if request is not None:
                return getattr(self.stub, method)(request, timeout=10)
            return self.call(method, **fields)

        got_code, details, got_reason = h.grpc_error_of(call)
        self.assertEqual(got_code, code, f"{what}: {details!r}")
        self.assertEqual(got_reason, reason, f"{what}: ErrorInfo reason ({details!r})")
        self.assertTrue(details, f"{what}: empty message")
        for m in mentions:
            self.assertIn(m, details, f"{what}: the message should mention {m!r}")
        return details

    def assertInvalid(self, method, mentions, **fields):
        return self.assertError(method, C.INVALID_ARGUMENT, "ValidationException", mentions,
                                **fields)

    def create(self, name, kind="OnDemand", **members):
        return self.stub.CreateFlow(create_request(name, kind, **members), timeout=10)

    def assertCreated(self, name, kind="OnDemand", **members):
        r = self.create(name, kind, **members)
        self.assertEqual((r.flow_arn, r.flow_status),
                         (arn(name), ACTIVE if kind == "OnDemand" else DRAFT))

    def describe(self, name):
        return self.call("DescribeFlow", flow_name=name)

    def status(self, name):
        return self.describe(name).flow_status

    def assertGone(self, name):
        self.assertError("DescribeFlow", C.NOT_FOUND, "ResourceNotFoundException", [name],
                         flow_name=name)

    def assertRecent(self, ts, before, after, what):
        self.assertGreater(ts.seconds, 0, f"{what} is set")
        t = ts.ToDatetime(tzinfo=datetime.timezone.utc).timestamp()
        self.assertGreaterEqual(t, before - 2, what)
        self.assertLessEqual(t, after + 2, what)

    def tags_of(self, name):
        return dict(self.call("ListTagsForResource", resource_arn=arn(name)).tags)

    # ---- the story ----

    def test_story(self):
        name = "grpc_story"
        self.assertCreated(name, "Scheduled")
        self.assertEqual(self.status(name), DRAFT)
        r = self.call("StartFlow", flow_name=name)
        self.assertEqual((r.flow_arn, r.flow_status, r.execution_id), (arn(name), ACTIVE, ""))
        r = self.call("StopFlow", flow_name=name)
        self.assertEqual((r.flow_arn, r.flow_status), (arn(name), SUSPENDED))
        self.assertEqual(self.status(name), SUSPENDED)
        self.assertEqual(self.call("StartFlow", flow_name=name).flow_status, ACTIVE)
        msg = self.assertError("DeleteFlow", C.ABORTED, "ConflictException", flow_name=name)
        self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
        self.assertEqual(self.status(name), ACTIVE)
        r = self.call("DeleteFlow", flow_name=name, force_delete=True)
        self.assertEqual(r, pb.DeleteFlowResponse())
        self.assertGone(name)
        self.assertCreated(name, "Event")  # the name is free again
        self.assertEqual(self.describe(name).trigger_config.trigger_type,
                         pb.TRIGGER_TYPE_EVENT)

    # ---- CreateFlow, DescribeFlow ----

    def test_describe_returns_what_was_created(self):
        name = "grpc_described"
        members = h.s3_flow(name, "Scheduled", description="hourly, S3 to S3.",
                            kmsArn="arn:aws:kms:us-east-1:123456789012:key/k1",
                            tags={"team": "data", "env": "test"},
                            metadataCatalogConfig={"glueDataCatalog": {
                                "roleArn": "arn:aws:iam::123456789012:role/glue",
                                "databaseName": "db", "tablePrefix": "p"}})
        members["triggerConfig"] = h.trigger(
            "Scheduled", "cron(0 12 * * ? *)", dataPullMode="Complete",
            scheduleStartTime=1893553445, timezone="UTC", scheduleOffset=60,
            flowErrorDeactivationThreshold=3)
        req = json_format.ParseDict(h.to_proto_json(members), pb.CreateFlowRequest())
        before = time.time()
        r = self.stub.CreateFlow(req, timeout=10)
        after = time.time()
        self.assertEqual((r.flow_arn, r.flow_status), (arn(name), DRAFT))
        d = self.describe(name)
        self.assertEqual((d.flow_arn, d.flow_name, d.flow_status), (arn(name), name, DRAFT))
        self.assertEqual((d.description, d.kms_arn), (req.description, req.kms_arn))
        self.assertEqual(d.trigger_config, req.trigger_config)
        self.assertEqual(d.trigger_config.trigger_properties.scheduled.schedule_start_time.seconds,
                         1893553445)
        self.assertEqual(dict(d.tags), {"team": "data", "env": "test"})
        self.assertEqual(struct_json(d.source_flow_config), members["sourceFlowConfig"])
        self.assertEqual(struct_json(d.destination_flow_config_list),
                         members["destinationFlowConfigList"])
        self.assertEqual(struct_json(d.tasks), members["tasks"])
        self.assertEqual(struct_json(d.metadata_catalog_config),
                         members["metadataCatalogConfig"])
        self.assertRecent(d.created_at, before, after, "created_at")
        self.assertRecent(d.last_updated_at, before, after, "last_updated_at")
        self.assertGreaterEqual(d.last_updated_at.ToNanoseconds(), d.created_at.ToNanoseconds())
        self.assertFalse(d.HasField("last_run_execution_details"), "no run yet")

    def test_create_flow_validation(self):
        cases = [
            ("flowName of 257", {"flowName": "g" * 257}, "flowName"),
            ("flowName missing", {"flowName": None}, "flowName"),
            ("flowName pattern", {"flowName": "my flow"}, "flowName"),
            ("description of 2049", {"description": "d" * 2049}, "description"),
            ("description pattern", {"description": "a;b"}, "description"),
            ("kmsArn of 19", {"kmsArn": "arn:aws:kms:r:1:key"}, "kmsArn"),
            ("kmsArn pattern", {"kmsArn": "arn:aws:iam::123456789012:role/r"}, "kmsArn"),
            ("triggerConfig missing", {"triggerConfig": None}, "triggerConfig"),
            ("triggerType missing", {"triggerConfig": {}}, "triggerType"),
            ("Scheduled without properties", {"triggerConfig": {"triggerType": "Scheduled"}},
             "triggerProperties"),
            ("scheduleExpression not rate or cron",
             {"triggerConfig": h.trigger("Scheduled", "hourly")}, "scheduleExpression"),
            ("scheduleOffset 36001", {"triggerConfig": h.trigger("Scheduled",
                                                                 scheduleOffset=36001)},
             "scheduleOffset"),
            ("flowErrorDeactivationThreshold 101",
             {"triggerConfig": h.trigger("Scheduled", flowErrorDeactivationThreshold=101)},
             "flowErrorDeactivationThreshold"),
            ("sourceFlowConfig missing", {"sourceFlowConfig": None}, "sourceFlowConfig"),
            # (an unknown connectorType cannot be sent: it is a typed enum on gRPC)
            ("connectorType missing", {"sourceFlowConfig": {
                "sourceConnectorProperties": {"S3": {"bucketName": "src"}}}}, "connectorType"),
            ("sourceConnectorProperties missing", {"sourceFlowConfig": {"connectorType": "S3"}},
             "sourceConnectorProperties"),
            ("destinationFlowConfigList missing", {"destinationFlowConfigList": None},
             "destinationFlowConfigList"),
            ("destinationConnectorProperties missing",
             {"destinationFlowConfigList": [{"connectorType": "S3"}]},
             "destinationConnectorProperties"),
            ("tasks missing", {"tasks": None}, "projection task"),
            # (sourceFields of another type cannot be sent: it is a typed list on gRPC)
            ("bucketName of 2", {"sourceFlowConfig": {
                "connectorType": "S3", "sourceConnectorProperties": {"S3": {"bucketName": "ab"}}}},
             "sourceFlowConfig.sourceConnectorProperties.S3.bucketName"),
            ("taskType missing", {"tasks": [{"sourceFields": ["a"]}]}, "taskType"),
            ("51 tags", {"tags": {f"k{i}": "v" for i in range(51)}}, "tags"),
            ("tag key aws:", {"tags": {"aws:x": "v"}}, "tags"),
            ("tag key of 129", {"tags": {"k" * 129: "v"}}, "tags"),
            ("tag value of 257", {"tags": {"k": "v" * 257}}, "tags"),
            ("clientToken of 257", {"clientToken": "c" * 257}, "clientToken"),
            ("clientToken not printable", {"clientToken": "a\u00e9"}, "clientToken"),
        ]
        for i, (what, members, mention) in enumerate(cases):
            with self.subTest(what):
                name = f"grpc_invalid_{i:02d}"
                self.assertError("CreateFlow", C.INVALID_ARGUMENT, "ValidationException",
                                 [mention], request=create_request(name, **members))
                self.assertGone(name)

    def test_name_taken_is_already_exists(self):
        self.assertCreated("grpc_taken", "Scheduled")
        for kind in ("Scheduled", "Event"):
            self.assertError("CreateFlow", C.ALREADY_EXISTS, "ConflictException", ["grpc_taken"],
                             request=create_request("grpc_taken", kind))
        self.assertError("CreateFlow", C.ALREADY_EXISTS, "ConflictException", ["seed_ondemand"],
                         request=create_request("seed_ondemand"))

    def test_create_flow_client_token(self):
        name = "grpc_token"
        req = create_request(name, "Event", clientToken="tok-1", description="one")
        first = self.stub.CreateFlow(req, timeout=10)
        self.assertEqual((first.flow_arn, first.flow_status), (arn(name), DRAFT))
        self.call("StartFlow", flow_name=name)
        self.assertEqual(self.stub.CreateFlow(req, timeout=10), first)
        self.assertEqual(self.status(name), ACTIVE)
        other = create_request(name, "Event", clientToken="tok-1", description="two")
        code, _, reason = h.grpc_error_of(lambda: self.stub.CreateFlow(other, timeout=10))
        self.assertIn(code, (C.ALREADY_EXISTS, C.ABORTED))
        self.assertEqual(reason, "ConflictException")
        self.assertError("CreateFlow", C.ALREADY_EXISTS, "ConflictException",
                         request=create_request(name, "Event", clientToken="tok-2",
                                                description="one"))
        self.assertError("CreateFlow", C.ALREADY_EXISTS, "ConflictException",
                         request=create_request(name, "Event", description="one"))
        self.assertEqual(self.describe(name).description, "one")

    # ---- StartFlow, StopFlow, DeleteFlow ----

    def test_start_rows(self):
        for name in ("seed_errored", "seed_suspended", "seed_event_active"):
            with self.subTest(name):
                r = self.call("StartFlow", flow_name=name)
                self.assertEqual((r.flow_arn, r.flow_status, r.execution_id),
                                 (arn(name), ACTIVE, ""))
                self.assertEqual(self.status(name), ACTIVE)
        self.assertError("StartFlow", C.ABORTED, "ConflictException", flow_name="seed_deprecated")
        self.assertEqual(self.status("seed_deprecated"), DEPRECATED)
        self.assertError("StartFlow", C.NOT_FOUND, "ResourceNotFoundException", ["grpc_nope"],
                         flow_name="grpc_nope")
        self.assertInvalid("StartFlow", ["flowName"], flow_name="")
        self.assertInvalid("StartFlow", ["clientToken"], flow_name="seed_ondemand",
                           client_token="\x01x")

    def test_on_demand_runs(self):
        name = "grpc_run"
        self.assertCreated(name)
        r1 = self.call("StartFlow", flow_name=name, client_token="run-1")
        self.assertEqual((r1.flow_arn, r1.flow_status), (arn(name), ACTIVE))
        self.assertRegex(r1.execution_id, ANY_UUID)
        self.assertEqual(self.call("StartFlow", flow_name=name, client_token="run-1"), r1)
        r2 = self.call("StartFlow", flow_name=name)  # no token: always a new run
        after = time.time()
        r3 = self.call("StartFlow", flow_name=name)
        self.assertEqual(len({r1.execution_id, r2.execution_id, r3.execution_id}), 3)
        d = self.describe(name)
        self.assertEqual(d.flow_status, ACTIVE)
        run = d.last_run_execution_details
        self.assertEqual(run.most_recent_execution_status, pb.EXECUTION_STATUS_SUCCESSFUL)
        self.assertRecent(run.most_recent_execution_time, after, time.time(),
                          "most_recent_execution_time (of the last run)")
        self.assertError("StopFlow", C.FAILED_PRECONDITION, "UnsupportedOperationException",
                         [name], flow_name=name)
        self.call("DeleteFlow", flow_name=name)
        self.assertGone(name)

    def test_stop_rows(self):
        self.assertCreated("grpc_stop_draft", "Scheduled")
        self.assertError("StopFlow", C.ABORTED, "ConflictException", flow_name="grpc_stop_draft")
        self.assertError("StopFlow", C.FAILED_PRECONDITION, "UnsupportedOperationException",
                         flow_name="seed_ondemand")
        self.assertError("StopFlow", C.NOT_FOUND, "ResourceNotFoundException",
                         flow_name="grpc_nope")

    def test_delete_rows(self):
        self.assertCreated("grpc_del_event", "Event")
        self.call("StartFlow", flow_name="grpc_del_event")
        msg = self.assertError("DeleteFlow", C.ABORTED, "ConflictException",
                               flow_name="grpc_del_event", force_delete=False)
        self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
        self.call("DeleteFlow", flow_name="grpc_del_event", force_delete=True)
        self.assertCreated("grpc_del_draft", "Scheduled")
        self.call("DeleteFlow", flow_name="grpc_del_draft")
        for name in ("grpc_del_event", "grpc_del_draft"):
            self.assertGone(name)
            self.assertError("DeleteFlow", C.NOT_FOUND, "ResourceNotFoundException", [name],
                             flow_name=name)
        self.assertInvalid("DeleteFlow", ["flowName"], flow_name="x" * 257)

    # ---- tags ----

    def test_tags(self):
        name = "grpc_tags"
        self.assertCreated(name, tags={"a": "1"})
        r = self.call("TagResource", resource_arn=arn(name), tags={"b": "2", "a": "one"})
        self.assertEqual(r, pb.TagResourceResponse())
        self.assertEqual(self.tags_of(name), {"a": "one", "b": "2"})
        r = self.call("UntagResource", resource_arn=arn(name), tag_keys=["a", "missing"])
        self.assertEqual(r, pb.UntagResourceResponse())
        self.assertEqual(self.tags_of(name), {"b": "2"})
        self.assertEqual(dict(self.describe(name).tags), {"b": "2"})
        self.call("UntagResource", resource_arn=arn(name), tag_keys=["b"])
        self.assertEqual(self.tags_of(name), {})

    def test_tag_errors(self):
        a = arn("seed_tagged")
        for method, fields in (("TagResource", {"tags": {"k": "v"}}),
                               ("UntagResource", {"tag_keys": ["team"]}),
                               ("ListTagsForResource", {})):
            with self.subTest(method):
                for bad in ("not-an-arn", "", "arn:aws:appflow:us-east-1:x:flow/seed_tagged",
                            "arn:aws:appflow:us-east-1:000000000000:flow/" + "f" * 469):
                    self.assertInvalid(method, ["resourceArn"], resource_arn=bad, **fields)
                for unknown in (arn("grpc_nope"), arn("seed_tagged", account="111111111111")):
                    self.assertError(method, C.NOT_FOUND, "ResourceNotFoundException",
                                     resource_arn=unknown, **fields)
        self.call("TagResource", resource_arn=a, tags={})  # AWS takes an empty map: no change
        self.assertInvalid("TagResource", ["tags"], resource_arn=a, tags={"aws:k": "v"})
        self.assertInvalid("TagResource", ["tags"], resource_arn=a,
                           tags={f"n{i}": "v" for i in range(50)})  # 51 with "team"
        self.assertInvalid("UntagResource", ["tagKeys"], resource_arn=a, tag_keys=[])
        self.assertEqual(self.tags_of("seed_tagged"), {"team": "data"})

    # ---- ListFlows ----

    def test_list_flows(self):
        self.assertCreated("grpc_listed", "Scheduled", description="in the list")
        names, token, pages = [], None, 0
        while True:
            r = self.call("ListFlows", max_results=2, **({"next_token": token} if token else {}))
            self.assertLessEqual(len(r.flows), 2)
            names += [f.flow_name for f in r.flows]
            pages += 1
            token = r.next_token
            if not token:
                break
            self.assertLess(pages, 1000)
        self.assertEqual(len(names), len(set(names)), "no flow twice")
        self.assertLessEqual({f["flowName"] for f in FLOWS}, set(names))
        self.assertIn("grpc_listed", names)
        # max_results not set: the default page of up to 100; 0 is a value, and out of range
        everything = self.call("ListFlows")
        self.assertEqual(len(everything.flows), min(100, len(names)))
        self.assertInvalid("ListFlows", ["maxResults"], max_results=0)
        self.assertInvalid("ListFlows", ["nextToken"], next_token="")
        f = [f for f in everything.flows if f.flow_name == "grpc_listed"][0]
        self.assertEqual((f.flow_arn, f.description, f.flow_status, f.trigger_type,
                          f.source_connector_type, f.destination_connector_type),
                         (arn("grpc_listed"), "in the list", DRAFT, pb.TRIGGER_TYPE_SCHEDULED,
                          pb.CONNECTOR_TYPE_S3, pb.CONNECTOR_TYPE_S3))
        self.assertGreater(f.created_at.seconds, 0)
        for n in (101, -1):
            self.assertInvalid("ListFlows", ["maxResults"], max_results=n)
        first = self.call("ListFlows", max_results=1)
        self.assertTrue(first.next_token)
        for bad in ("garbage", h.tampered(first.next_token, len(first.next_token) // 2)):
            self.assertInvalid("ListFlows", ["nextToken"], max_results=1, next_token=bad)

    # ---- both doors, one flow ----

    def test_created_on_grpc_described_on_aws(self):
        name = "grpc_then_aws"
        members = h.s3_flow(name, "Scheduled", description="both doors", tags={"k": "v"})
        self.stub.CreateFlow(json_format.ParseDict(h.to_proto_json(members),
                                                   pb.CreateFlowRequest()), timeout=10)
        g = self.describe(name)
        r = h.aws_request(self.port, {"flowName": name}, path="/describe-flow")
        self.assertEqual(r.status, 200, repr(r))
        body = r.json()
        for k, v in members.items():
            self.assertEqual(body.get(k), v, k)
        self.assertEqual((body["flowArn"], body["flowStatus"]), (arn(name), "Draft"))
        # the same instants (epoch seconds on the AWS wire, Timestamp on gRPC)
        self.assertAlmostEqual(body["createdAt"], g.created_at.ToNanoseconds() / 1e9, delta=1e-6)
        self.assertAlmostEqual(body["lastUpdatedAt"], g.last_updated_at.ToNanoseconds() / 1e9,
                               delta=1e-6)
        # started on the AWS door, suspended on gRPC, deleted on AWS
        r = h.aws_request(self.port, {"flowName": name}, path="/start-flow")
        self.assertEqual(r.json(), {"flowArn": arn(name), "flowStatus": "Active"})
        self.assertEqual(self.call("StopFlow", flow_name=name).flow_status, SUSPENDED)
        r = h.aws_request(self.port, {"flowName": name}, path="/delete-flow")
        self.assertEqual((r.status, r.json()), (200, {}), repr(r))
        self.assertGone(name)

    def test_created_on_aws_described_on_grpc(self):
        name = "aws_then_grpc"
        members = h.s3_flow(name, tags={"k": "v"})
        r = h.aws_request(self.port, members, path="/create-flow")
        self.assertEqual(r.json(), {"flowArn": arn(name), "flowStatus": "Active"})
        d = self.describe(name)
        self.assertEqual(struct_json(d.source_flow_config), members["sourceFlowConfig"])
        self.assertEqual(struct_json(d.tasks), members["tasks"])
        self.assertEqual(d.trigger_config.trigger_type, pb.TRIGGER_TYPE_ON_DEMAND)
        self.assertEqual(dict(d.tags), {"k": "v"})
        run = self.call("StartFlow", flow_name=name)
        r = h.aws_request(self.port, {"flowName": name}, path="/describe-flow")
        details = r.json()["lastRunExecutionDetails"]
        self.assertEqual(details["mostRecentExecutionStatus"], "Successful")
        self.assertTrue(run.execution_id)

    def test_same_error_on_both_doors(self):
        cases = [
            ("DescribeFlow", "/describe-flow", {"flowName": "nope_nope"}),
            ("CreateFlow", "/create-flow", h.s3_flow("seed_ondemand")),
            ("CreateFlow", "/create-flow", h.s3_flow("both_bad", tags={"aws:x": "y"})),
            ("StartFlow", "/start-flow", {"flowName": "seed_deprecated"}),
            ("ListFlows", "/list-flows", {"maxResults": 101}),
            ("ListFlows", "/list-flows", {"nextToken": "garbage"}),
        ]
        for method, path, body in cases:
            with self.subTest(f"{method} {json.dumps(body)[:60]}"):
                r = h.aws_request(self.port, body, path=path)
                req = json_format.ParseDict(h.to_proto_json(body),
                                            getattr(pb, f"{method}Request")())
                code, details, reason = h.grpc_error_of(
                    lambda: getattr(self.stub, method)(req, timeout=10))
                self.assertIsNotNone(r.error_type, repr(r))
                self.assertEqual(reason, r.error_type)
                self.assertEqual(details, r.message)
                if r.error_type == "ConflictException" and method == "CreateFlow":
                    self.assertEqual(code, C.ALREADY_EXISTS)
                else:
                    self.assertEqual(code, h.AWS_GRPC_CODE[r.error_type])


if __name__ == "__main__":
    unittest.main(verbosity=2)
