"""The contract from AppFlow's model, as a new user meets it: nested configuration checked at
every depth in AWS's words (every problem at once, "N validation errors detected"), unknown
members dropped, presence kept (a 0 or "" is a value, an empty map is not null), UpdateFlow
through boto3, the AWS CLI v2 and gRPC, a Terraform-like sequence, every member DescribeFlow
returns, the request size limit on both doors, and the model's checks before any operation."""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import botocore.exceptions  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

AWS = "/usr/bin/aws"
ROOT = "arn:aws:iam::000000000000:root"

ERRORED_WHY = "The last run failed: the source bucket does not exist"
FLOWS = [
    h.flow("seed_active_sched", "Scheduled", "Active"),
    h.flow("seed_errored", "Scheduled", "Errored", flowStatusMessage=ERRORED_WHY),
    h.flow("seed_untagged", "Event", "Suspended"),
]


def s3_source(**s3):
    return {"connectorType": "S3", "sourceConnectorProperties": {"S3": s3}}


def mapped_tasks(n):
    """A projection of n fields and a Map task for each: n + 1 tasks."""
    fields = [f"field_{i:04d}_with_a_long_descriptive_name" for i in range(n)]
    tasks = [{"sourceFields": fields, "taskType": "Filter",
              "connectorOperator": {"S3": "PROJECTION"}}]
    for f in fields:
        tasks.append({"sourceFields": [f], "taskType": "Map", "destinationField": f,
                      "connectorOperator": {"S3": "NO_OP"},
                      "taskProperties": {"SOURCE_DATA_TYPE": "string",
                                         "DESTINATION_DATA_TYPE": "string"}})
    return tasks


class ContractTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.start_http_server(FLOWS)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.client = h.boto3_appflow(cls.port)
        cls.loose = h.boto3_appflow(cls.port, validate=False)
        cls.chan = h.channel(cls.server.port)
        cls.addClassCleanup(cls.chan.close)
        cls.pb = h.stubs().appflow_pb2
        cls.stub = h.stubs().appflow_pb2_grpc.AppFlowServiceStub(cls.chan)

    # ---- helpers ----

    def post(self, path, body, method="POST"):
        return h.aws_request(self.port, body, method=method, path=path)

    def assertInvalid(self, reply, *mentions, count=None, etype="ValidationException"):
        self.assertEqual((reply.status, reply.error_type), (400, etype), reply)
        for m in mentions:
            self.assertIn(m, reply.message)
        if count is not None:
            self.assertTrue(reply.message.startswith(
                f"{count} validation error{'s' if count > 1 else ''} detected: "), reply.message)
        return reply.message

    def create(self, name, **members):
        r = self.post("/create-flow", h.s3_flow(name, **members))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def describe(self, name):
        r = self.post("/describe-flow", {"flowName": name})
        self.assertEqual(r.status, 200, r)
        return r.json()

    # ---- nested validation ----

    def test_nested_members_are_checked(self):
        rows = [
            ("no bucketName", {"sourceFlowConfig": s3_source()},
             ["Value null at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' failed "
              "to satisfy constraint: Member must not be null"]),
            ("2-letter bucket", {"sourceFlowConfig": s3_source(bucketName="ab")},
             ["Value 'ab' at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' failed "
              "to satisfy constraint: Member must have length greater than or equal to 3"]),
            ("connectorType disagrees",
             {"sourceFlowConfig": {"connectorType": "Salesforce",
                                   "sourceConnectorProperties": {"S3": {"bucketName": "abc"}}}},
             ["sourceConnectorProperties"]),
            ("two destinations", {"destinationFlowConfigList": h.S3_DESTINATIONS * 2},
             ["destination"]),
            ("taskType Bogus", {"tasks": [{"sourceFields": ["a"], "taskType": "Bogus"}]},
             ["Value 'Bogus' at 'tasks.1.member.taskType' failed to satisfy constraint: "
              "Member must satisfy enum value set: ["]),
            ("no projection", {"tasks": [{"sourceFields": ["a"], "taskType": "Map",
                                          "connectorOperator": {"S3": "NO_OP"}}]},
             ["projection"]),
            ("schedule not rate or cron",
             {"triggerConfig": h.trigger("Scheduled", "hourly")}, ["scheduleExpression"]),
            ("end before start",
             {"triggerConfig": h.trigger("Scheduled", scheduleStartTime=1900000000,
                                         scheduleEndTime=1800000000)}, ["scheduleEndTime"]),
        ]
        for i, (what, members, mentions) in enumerate(rows):
            with self.subTest(what):
                name = f"nested_{i}"
                self.assertInvalid(self.post("/create-flow", h.s3_flow(name, **members)),
                                   *mentions)
                r = self.post("/describe-flow", {"flowName": name})
                self.assertEqual(r.error_type, "ResourceNotFoundException", r)

    def test_wrong_json_type_is_a_serialization_error(self):
        r = self.post("/create-flow", h.s3_flow("nested_type",
                                                sourceFlowConfig=s3_source(bucketName=123)))
        self.assertEqual((r.status, r.error_type), (400, "SerializationException"), r)
        self.assertIn("bucketName", r.message)

    def test_every_problem_at_once_in_model_order(self):
        members = {"flowName": "two problems", "description": "a;b"}
        msg = self.assertInvalid(self.post("/create-flow", h.s3_flow("x", **members)), count=2)
        self.assertLess(msg.index("'flowName'"), msg.index("'description'"), msg)

    def test_unknown_members_are_dropped(self):
        extra = h.s3_flow("unknown_members", bogusTop=1)
        extra["sourceFlowConfig"]["bogusNested"] = {"a": 1}
        extra["sourceFlowConfig"]["sourceConnectorProperties"]["S3"]["bogusDeep"] = "x"
        r = self.post("/create-flow", extra)
        self.assertEqual(r.status, 200, r)
        text = json.dumps(self.describe("unknown_members"))
        self.assertNotIn("bogus", text)

    # ---- presence ----

    def test_zero_and_empty_are_values(self):
        self.assertInvalid(self.post("/list-flows", {"maxResults": 0}), "maxResults", count=1)
        self.assertInvalid(self.post("/list-flows", {"nextToken": ""}), "nextToken")
        self.assertInvalid(self.post("/create-flow", h.s3_flow("presence_kms", kmsArn="")),
                           "Value '' at 'kmsArn'")
        self.assertInvalid(self.post("/create-flow", h.s3_flow(
            "presence_threshold",
            triggerConfig=h.trigger("Scheduled", flowErrorDeactivationThreshold=0))),
            "flowErrorDeactivationThreshold")
        self.create("presence_offset", triggerConfig=h.trigger("Scheduled", scheduleOffset=0))
        sched = self.describe("presence_offset")["triggerConfig"]["triggerProperties"]
        self.assertEqual(sched["Scheduled"]["scheduleOffset"], 0)
        self.assertNotIn("timezone", sched["Scheduled"])

    def test_empty_tags_are_accepted_and_listed(self):
        target = "/tags/" + h.arn("seed_untagged").replace("/", "%2F")
        r = self.post(target, {"tags": {}})
        self.assertEqual(r.status, 200, r)
        r = self.post(target, None, method="GET")
        self.assertEqual((r.status, r.json()), (200, {"tags": {}}), r)

    # ---- clientToken ----

    def test_a_client_token_belongs_to_its_first_request(self):
        """The same token with another request, another flow name included, is a conflict on
        both doors; the same request again gets the first result."""
        first = self.client.create_flow(**h.s3_flow("token_first", clientToken="tok-e2e-1"))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client.create_flow(**h.s3_flow("token_second", clientToken="tok-e2e-1"))
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "ConflictException")
        self.assertIn("Conflict executing request: clientToken tok-e2e-1", err["Message"])
        again = self.client.create_flow(**h.s3_flow("token_first", clientToken="tok-e2e-1"))
        self.assertEqual((again["flowArn"], again["flowStatus"]),
                         (first["flowArn"], first["flowStatus"]))
        req = json_format.ParseDict(h.to_proto_json(h.s3_flow("token_third",
                                                              clientToken="tok-e2e-1")),
                                    self.pb.CreateFlowRequest())
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateFlow(req, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)
        names = [f["flowName"] for f in self.client.list_flows(maxResults=100)["flows"]]
        self.assertIn("token_first", names)
        self.assertNotIn("token_second", names)
        self.assertNotIn("token_third", names)

    # ---- DescribeFlow / ListFlows members ----

    def test_describe_returns_every_member(self):
        created = self.create("members_all", description="all members",
                              triggerConfig=h.trigger("Scheduled"))
        d = self.describe("members_all")
        self.assertEqual(d["flowArn"], created["flowArn"])
        for member in ("createdAt", "lastUpdatedAt", "createdBy", "lastUpdatedBy",
                       "schemaVersion", "sourceFlowConfig", "destinationFlowConfigList",
                       "tasks", "triggerConfig", "flowStatus", "tags"):
            self.assertIn(member, d)
        self.assertEqual((d["createdBy"], d["lastUpdatedBy"]), (ROOT, ROOT))
        self.assertNotIn("flowStatusMessage", d)
        errored = self.describe("seed_errored")
        self.assertEqual((errored["flowStatus"], errored["flowStatusMessage"]),
                         ("Errored", ERRORED_WHY))
        self.assertEqual(d["schemaVersion"], 1)
        flows = self.client.list_flows(maxResults=100)["flows"]
        row = [f for f in flows if f["flowName"] == "members_all"][0]
        self.assertEqual((row["createdBy"], row["lastUpdatedBy"]), (ROOT, ROOT))
        self.assertEqual((row["sourceConnectorType"], row["destinationConnectorType"]),
                         ("S3", "S3"))

    # ---- UpdateFlow ----

    def update_members(self, name, **members):
        d = h.s3_flow(name, "Scheduled", **members)
        d.pop("tags", None)
        return d

    def test_update_flow_boto3(self):
        self.client.create_flow(**h.s3_flow("upd_boto3", "Scheduled"))
        self.client.start_flow(flowName="upd_boto3")
        before = self.client.describe_flow(flowName="upd_boto3")
        time.sleep(0.002)  # a later millisecond for lastUpdatedAt, not a wait on an event
        tasks = mapped_tasks(2)
        r = self.client.update_flow(**self.update_members(
            "upd_boto3", description="changed", tasks=tasks, clientToken="upd-token-1"))
        self.assertEqual(r["flowStatus"], "Active", "an Active scheduled flow stays Active")
        after = self.client.describe_flow(flowName="upd_boto3")
        self.assertEqual(after["description"], "changed")
        self.assertEqual(len(after["tasks"]), 3)
        self.assertEqual(after["schemaVersion"], before["schemaVersion"] + 1)
        self.assertGreater(after["lastUpdatedAt"], before["lastUpdatedAt"])
        self.assertEqual(after["createdAt"], before["createdAt"])
        # the same token and request: the first result; another request: a conflict
        again = self.client.update_flow(**self.update_members(
            "upd_boto3", description="changed", tasks=tasks, clientToken="upd-token-1"))
        self.assertEqual(again["flowStatus"], "Active")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client.update_flow(**self.update_members(
                "upd_boto3", description="other", tasks=tasks, clientToken="upd-token-1"))
        self.assertEqual(cm.exception.response["Error"]["Code"], "ConflictException")
        self.assertIn("Conflict executing request", cm.exception.response["Error"]["Message"])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client.update_flow(**self.update_members("upd_nobody"))
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.loose.update_flow(**self.update_members(
                "upd_boto3", sourceFlowConfig=s3_source(bucketName="ab")))
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")

    def test_update_flow_aws_cli(self):
        if not os.access(AWS, os.X_OK):
            raise SystemExit(f"{AWS} (Debian's awscli) is required")
        self.create("upd_cli", triggerConfig=h.trigger("Scheduled"))
        files = h.tempdir("appflowd-e2e-contract-")
        path = os.path.join(files, "update.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.update_members("upd_cli", description="from the CLI"), f)
        data_path = h.aws_data_path(os.path.join(h.package_dir("awscli"), "botocore", "data"))
        env = h.aws_client_env(AWS_DATA_PATH=data_path, AWS_MAX_ATTEMPTS="1")
        proc = subprocess.run(
            [AWS, "appflow", "update-flow", "--cli-input-json", "file://" + path,
             "--endpoint-url", f"http://127.0.0.1:{self.port}"],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout), {"flowStatus": "Draft"})
        self.assertEqual(self.describe("upd_cli")["description"], "from the CLI")

    def test_update_flow_grpc(self):
        req = json_format.ParseDict(h.to_proto_json(h.s3_flow("upd_grpc")),
                                    self.pb.CreateFlowRequest())
        self.stub.CreateFlow(req, timeout=10)
        members = self.update_members("upd_grpc", description="typed")
        members["triggerConfig"] = h.trigger("OnDemand")
        upd = json_format.ParseDict(h.to_proto_json(members, "UpdateFlowRequest"),
                                    self.pb.UpdateFlowRequest())
        self.assertIsInstance(upd.source_flow_config.source_connector_properties.s3,
                              self.pb.S3SourceProperties)
        r = self.stub.UpdateFlow(upd, timeout=10)
        self.assertEqual(r.flow_status, self.pb.FLOW_STATUS_ACTIVE)
        d = self.stub.DescribeFlow(self.pb.DescribeFlowRequest(flow_name="upd_grpc"), timeout=10)
        self.assertEqual(d.description, "typed")
        self.assertEqual(d.source_flow_config.source_connector_properties.s3.bucket_name, "src")
        self.assertTrue(d.HasField("schema_version"))

    def test_terraform_like_sequence(self):
        """What Terraform's aws_appflow_flow does for one resource's life."""
        c = self.client
        name = "tf_flow"
        created = c.create_flow(**h.s3_flow(name, "Scheduled", tags={"owner": "tf"}))
        arn = created["flowArn"]
        self.assertEqual(c.describe_flow(flowName=name)["flowArn"], arn)
        c.update_flow(**self.update_members(name, description="tf update"))
        self.assertEqual(c.describe_flow(flowName=name)["description"], "tf update")
        c.tag_resource(resourceArn=arn, tags={"env": "test"})
        self.assertEqual(c.list_tags_for_resource(resourceArn=arn)["tags"],
                         {"owner": "tf", "env": "test"})
        c.untag_resource(resourceArn=arn, tagKeys=["owner"])
        self.assertEqual(c.list_tags_for_resource(resourceArn=arn)["tags"], {"env": "test"})
        c.delete_flow(flowName=name, forceDelete=True)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            c.describe_flow(flowName=name)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")

    def test_typed_stubs_in_node(self):
        node = shutil.which("node")
        if node is None:
            raise SystemExit("node is required (Debian's nodejs)")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_typed_flow.js")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": h.tempdir(),
               "LANG": "C.UTF-8"}  # no proxy variables: grpc-js honours them
        r = subprocess.run([node, script, f"127.0.0.1:{self.server.port}", h.SOURCE_DIR,
                            "node_typed"], env=env, cwd=h.tempdir(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["created"]["flowStatus"], "FLOW_STATUS_DRAFT")
        self.assertEqual(out["updated"]["flowStatus"], "FLOW_STATUS_DRAFT")
        d = out["described"]
        self.assertEqual(d["description"], "updated from Node")
        self.assertEqual(d["sourceFlowConfig"]["sourceConnectorProperties"]["s3"]["bucketName"],
                         "node-src")
        self.assertEqual(d["tasks"][0]["connectorOperator"]["s3"],
                         "S3_CONNECTOR_OPERATOR_PROJECTION")
        sched = d["triggerConfig"]["triggerProperties"]["scheduled"]
        self.assertEqual(sched["scheduleOffset"], "0", "presence kept: a 0 sent comes back")
        # and the same flow through the AWS door, in AWS's names
        aws = self.describe("node_typed")
        self.assertEqual(aws["destinationFlowConfigList"][0]["destinationConnectorProperties"]
                         ["S3"]["s3OutputFormatConfig"]["fileType"], "PARQUET")

    # ---- sizes ----

    def test_a_flow_of_300_mapped_fields(self):
        body = h.s3_flow("wide_flow", tasks=mapped_tasks(300))
        self.assertGreater(len(json.dumps(body)), 70000)
        r = self.post("/create-flow", body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.describe("wide_flow")["tasks"]), 301)

    def test_request_limit_on_both_doors(self):
        srv = h.start_http_server([], "--max-request-bytes", "4096")
        try:
            body = h.s3_flow("too_big", tasks=mapped_tasks(40))
            r = h.aws_request(srv.http_port, body, path="/create-flow")
            self.assertEqual((r.status, r.error_type), (413, "ValidationException"), r)
            self.assertIn("4096 bytes", r.message)
            req = json_format.ParseDict(h.to_proto_json(body), self.pb.CreateFlowRequest())
            with h.channel(srv.port) as chan:
                stub = h.stubs().appflow_pb2_grpc.AppFlowServiceStub(chan)
                with self.assertRaises(grpc.RpcError) as cm:
                    stub.CreateFlow(req, timeout=10)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                self.assertIn("4096", cm.exception.details())
        finally:
            srv.stop()

    # ---- the model's checks come first ----

    def test_checks_come_before_the_operation(self):
        body = {"flowName": "any_flow"}
        r = self.post("/describe-flow-execution-records", body)
        self.assertEqual((r.status, r.error_type), (404, "ResourceNotFoundException"), r)
        self.assertInvalid(self.post("/describe-flow-execution-records",
                                     dict(body, maxResults=0)), "maxResults")
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.DescribeFlowExecutionRecords(
                self.pb.DescribeFlowExecutionRecordsRequest(flow_name="any_flow"), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
