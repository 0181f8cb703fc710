"""The flow lifecycle over the AWS REST-JSON door with boto3 (Debian's python3-boto3), in
process: CreateFlow, DescribeFlow, ListFlows, StartFlow, StopFlow, DeleteFlow, TagResource,
UntagResource and ListTagsForResource, every row of their semantics, and every validation
limit at its boundary (the value at the limit is accepted, one past it refused).

Each error is checked as botocore parses it: the code (x-amzn-ErrorType), a message naming the
member at fault, the HTTP status from the error table and a request id (a UUID). Values below
a model minimum (maxResults 0, an empty flowName) are caught by botocore before they are sent,
so a second client with parameter validation off sends them. Debian's botocore predates
clientToken on CreateFlow and StartFlow: harness.aws_data_path gives it AWS's current model
for those two members (and botocore then fills a fresh UUID into each call without one, as
the AWS SDKs do)."""

import datetime
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import botocore.exceptions  # noqa: E402

arn = h.arn
s3_flow = h.s3_flow
ANY_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UTC = datetime.timezone.utc

# Flows in states only a seed can give (Errored, Deprecated), or to act on without creating.
FLOWS = [
    h.flow("seed_sched_active", "Scheduled", "Active"),
    h.flow("seed_event_active", "Event", "Active"),
    h.flow("seed_sched_errored", "Scheduled", "Errored"),
    h.flow("seed_event_errored", "Event", "Errored"),
    h.flow("seed_sched_suspended", "Scheduled", "Suspended"),
    h.flow("seed_event_draft", "Event", "Draft"),
    h.flow("seed_sched_deprecated", "Scheduled", "Deprecated"),
    h.flow("seed_event_deprecated", "Event", "Deprecated"),
    h.flow("seed_ondemand", "OnDemand", "Active"),
    h.flow("seed_ondemand_checks", "OnDemand", "Active"),
    h.flow("seed_tagged", "Event", "Suspended", tags={"team": "data", "env": "test"}),
    h.flow("seed_untagged", "Event", "Suspended"),
    h.flow("del_sched_active", "Scheduled", "Active"),
    h.flow("del_event_active", "Event", "Active"),
    h.flow("del_sched_errored", "Scheduled", "Errored"),
    h.flow("del_event_errored", "Event", "Errored"),
    h.flow("del_sched_draft", "Scheduled", "Draft"),
    h.flow("del_event_suspended", "Event", "Suspended"),
    h.flow("del_sched_deprecated", "Scheduled", "Deprecated"),
    h.flow("del_ondemand_active", "OnDemand", "Active"),
]

KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_20 = "arn:aws:kms:r:1:key1"
KMS_2048 = "arn:aws:kms:us-east-1:123456789012:key/" + "k" * (2048 - 39)
assert len(KMS_20) == 20 and len(KMS_2048) == 2048
WORDS_2048 = ("Copies S3, nightly. " * 103)[:2048]
NAME_256 = "N" + "a" * 254 + "e"


def tags(n, prefix="k"):
    return {f"{prefix}{i:02d}": f"v{i}" for i in range(n)}


class LifecycleTest(unittest.TestCase):
    """One server with both doors for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.server = h.start_http_server(FLOWS)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.client = h.boto3_appflow(cls.port)
        cls.addClassCleanup(cls.client.close)
        cls.loose = h.boto3_appflow(cls.port, validate=False)
        cls.addClassCleanup(cls.loose.close)

    # ---- helpers ----

    def assertMetadata(self, resp, status=200):
        md = resp["ResponseMetadata"]
        self.assertEqual(md["HTTPStatusCode"], status)
        self.assertRegex(md["RequestId"], h.UUID_RE)
        self.assertEqual(md["RetryAttempts"], 0)
        return {k: v for k, v in resp.items() if k != "ResponseMetadata"}

    def assertError(self, op, code, mentions=(), client=None, **kwargs):
        """op(**kwargs) on client (default: the one that validates nothing) raises a ClientError
        with code, the error table's HTTP status, a request id, and a message containing each of
        mentions. Returns the message."""
        client = client or self.loose
        call = getattr(client, op)
        with self.assertRaises(botocore.exceptions.ClientError,
                               msg=f"{op}({str(kwargs)[:200]}): expected {code}") as cm:
            call(**kwargs)
        e = cm.exception
        err = e.response["Error"]
        what = f"{op}({str(kwargs)[:200]})"
        self.assertEqual(err["Code"], code, f"{what}: {err}")
        md = e.response["ResponseMetadata"]
        self.assertEqual(md["HTTPStatusCode"], h.AWS_HTTP_STATUS[code], what)
        self.assertRegex(md["RequestId"], h.UUID_RE, what)
        self.assertEqual(md["HTTPHeaders"].get("x-amzn-errortype"), code, what)
        self.assertTrue(err["Message"], f"{what}: empty message")
        for m in mentions:
            self.assertIn(m, err["Message"], f"{what}: the message should mention {m!r}")
        return err["Message"]

    def create(self, name, kind="OnDemand", client=None, **members):
        resp = (client or self.client).create_flow(**s3_flow(name, kind, **members))
        return self.assertMetadata(resp)

    def assertCreated(self, name, kind="OnDemand", **members):
        status = "Active" if kind == "OnDemand" else "Draft"
        self.assertEqual(self.create(name, kind, **members),
                         {"flowArn": arn(name), "flowStatus": status})

    def describe(self, name):
        return self.assertMetadata(self.client.describe_flow(flowName=name))

    def status(self, name):
        return self.describe(name)["flowStatus"]

    def start(self, name, **kwargs):
        return self.assertMetadata(self.client.start_flow(flowName=name, **kwargs))

    def stop(self, name):
        return self.assertMetadata(self.client.stop_flow(flowName=name))

    def delete(self, name, force=None):
        kwargs = {} if force is None else {"forceDelete": force}
        self.assertEqual(self.assertMetadata(self.client.delete_flow(flowName=name, **kwargs)),
                         {})

    def assertGone(self, name):
        self.assertError("describe_flow", "ResourceNotFoundException", [name], flowName=name)

    def assertStartResult(self, resp, name, status):
        self.assertEqual(resp, {"flowArn": arn(name), "flowStatus": status})

    def list_tags(self, name=None, resource_arn=None):
        resp = self.client.list_tags_for_resource(resourceArn=resource_arn or arn(name))
        return self.assertMetadata(resp).get("tags", {})

    def assertRecent(self, t, before, after, what):
        self.assertIsInstance(t, datetime.datetime, what)
        self.assertIsNotNone(t.tzinfo, what)
        self.assertGreaterEqual(t.timestamp(), before - 2, what)
        self.assertLessEqual(t.timestamp(), after + 2, what)

    # ---- the story ----

    def test_story_scheduled(self):
        name = "story_scheduled"
        self.assertCreated(name, "Scheduled")
        self.assertEqual(self.status(name), "Draft")
        self.assertStartResult(self.start(name), name, "Active")
        self.assertEqual(self.status(name), "Active")
        self.assertEqual(self.stop(name), {"flowArn": arn(name), "flowStatus": "Suspended"})
        self.assertEqual(self.status(name), "Suspended")
        self.assertStartResult(self.start(name), name, "Active")
        msg = self.assertError("delete_flow", "ConflictException", flowName=name,
                               client=self.client)
        self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
        msg = self.assertError("delete_flow", "ConflictException", flowName=name,
                               forceDelete=False, client=self.client)
        self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
        self.assertEqual(self.status(name), "Active", "a refused delete changes nothing")
        self.delete(name, force=True)
        self.assertGone(name)
        # the name is free again, and the new flow starts over
        self.assertCreated(name, "Scheduled", description="second life")
        d = self.describe(name)
        self.assertEqual((d["flowStatus"], d["description"]), ("Draft", "second life"))

    def test_story_event(self):
        name = "story_event"
        self.assertCreated(name, "Event")
        self.assertStartResult(self.start(name), name, "Active")
        self.assertStartResult(self.start(name), name, "Active")  # Active stays Active
        self.assertError("delete_flow", "ConflictException", flowName=name)
        self.stop(name)
        self.delete(name)  # Suspended: no force needed
        self.assertGone(name)
        self.assertError("delete_flow", "ResourceNotFoundException", [name], flowName=name)

    # ---- CreateFlow and DescribeFlow ----

    def test_describe_returns_what_was_created(self):
        name = "described"
        start_time = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        end_time = datetime.datetime(2031, 6, 7, 8, 9, 10, tzinfo=UTC)
        members = s3_flow(
            name, "Scheduled", description="S3 to S3, hourly.", kmsArn=KMS,
            tags={"team": "data", "cost-center": "cc-1042"},
            metadataCatalogConfig={"glueDataCatalog": {
                "roleArn": "arn:aws:iam::123456789012:role/glue", "databaseName": "db",
                "tablePrefix": "flows"}})
        members["triggerConfig"] = h.trigger(
            "Scheduled", "rate(5minutes)", dataPullMode="Incremental",
            scheduleStartTime=start_time, scheduleEndTime=end_time, timezone="America/New_York",
            scheduleOffset=36000, flowErrorDeactivationThreshold=100)
        before = time.time()
        self.assertEqual(self.assertMetadata(self.client.create_flow(**members)),
                         {"flowArn": arn(name), "flowStatus": "Draft"})
        after = time.time()
        d = self.describe(name)
        for k, v in members.items():
            self.assertEqual(d.get(k), v, f"describe_flow gives {k} back unchanged")
        self.assertEqual((d["flowArn"], d["flowName"], d["flowStatus"]),
                         (arn(name), name, "Draft"))
        self.assertRecent(d["createdAt"], before, after, "createdAt")
        self.assertRecent(d["lastUpdatedAt"], before, after, "lastUpdatedAt")
        self.assertGreaterEqual(d["lastUpdatedAt"], d["createdAt"])
        self.assertNotIn("lastRunExecutionDetails", d, "no run yet")
        self.assertNotIn("clientToken", d)
        # On the wire, timestamps are epoch seconds (JSON numbers).
        raw = h.aws_request(self.port, {"flowName": name}, path="/describe-flow")
        self.assertEqual(raw.status, 200, repr(raw))
        body = raw.json()
        for k in ("createdAt", "lastUpdatedAt"):
            self.assertIsInstance(body[k], (int, float), k)
            self.assertAlmostEqual(body[k], d[k].timestamp(), delta=0.001)
        sched = body["triggerConfig"]["triggerProperties"]["Scheduled"]
        self.assertEqual(sched["scheduleStartTime"], start_time.timestamp())

    def test_optional_members_left_out(self):
        self.assertCreated("minimal")
        d = self.describe("minimal")
        for k in ("description", "kmsArn", "metadataCatalogConfig", "lastRunExecutionDetails"):
            self.assertNotIn(k, d)
        # A top-level output map is always written: no tags is "tags": {}.
        self.assertEqual(d["tags"], {})
        self.assertEqual(d["triggerConfig"], {"triggerType": "OnDemand"})

    def test_create_flow_boundaries_accepted(self):
        cases = [
            ("flowName of 256", NAME_256, {}),
            ("flowName of 2", "ab", {}),
            ("flowName punctuation", "p!@#.-_q", {}),
            ("description of 2048", "desc_2048", {"description": WORDS_2048}),
            ("description punctuation", "desc_punct",
             {"description": "a_b!c@d#e-f.g?h,i j\tk\nl"}),
            ("kmsArn of 20", "kms_20", {"kmsArn": KMS_20}),
            ("kmsArn of 2048", "kms_2048", {"kmsArn": KMS_2048}),
            ("50 tags", "tags_50", {"tags": tags(50)}),
            ("tag key of 128", "tag_key_128", {"tags": {"k" * 128: "v"}}),
            ("tag key characters", "tag_key_chars", {"tags": {"a+-=._:/9;<": "v"}}),
            ("tag key AWS:", "tag_key_upper_aws", {"tags": {"AWS:x": "v"}}),
            ("tag value of 256", "tag_value_256", {"tags": {"k": "v" * 256}}),
            ("empty tag value", "tag_value_empty", {"tags": {"k": ""}}),
            ("tag value characters", "tag_value_chars", {"tags": {"k": "a b_+-=.:/@9"}}),
            ("clientToken of 256", "token_256", {"clientToken": "t" * 256}),
            ("clientToken printable", "token_printable", {"clientToken": " !~azAZ09\"'{}"}),
            ("cron schedule", "sched_cron",
             {"triggerConfig": h.trigger("Scheduled", "cron(0 12 * * ? *)")}),
            ("threshold 1", "sched_low",
             {"triggerConfig": h.trigger("Scheduled", flowErrorDeactivationThreshold=1)}),
            ("Event trigger", "event_trigger", {"triggerConfig": h.trigger("Event")}),
            # AppFlow takes exactly one destination now (two: test_create_flow_validation);
            # two of each task still goes.
            ("two of each task", "two_each", {"tasks": h.S3_TASKS * 2}),
            # \S+ (BucketName) takes any non-space character, as Java's matches() does: é, €
            # and an emoji are single characters of two, three and four bytes in UTF-8.
            ("non-ASCII in a \\S+ member", "non_ascii_s",
             {"sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties": {
                 "S3": {"bucketName": "donn\u00e9es-\u20ac-\U0001F600", "bucketPrefix": "in"}}}}),
        ]
        for what, name, members in cases:
            with self.subTest(what):
                kind = members.get("triggerConfig", {}).get("triggerType", "OnDemand")
                resp = self.assertMetadata(self.client.create_flow(**s3_flow(name, **members)))
                self.assertEqual(resp["flowArn"], arn(name))
                self.assertEqual(resp["flowStatus"], "Active" if kind == "OnDemand" else "Draft")
                d = self.describe(name)
                for k, v in members.items():
                    if k != "clientToken":
                        self.assertEqual(d.get(k), v, k)

    def test_schedule_offset_zero(self):
        # proto2 keeps presence: a 0 that was sent is described as 0
        name = "sched_offset_0"
        self.assertCreated(name, "Scheduled", triggerConfig=h.trigger("Scheduled",
                                                                      scheduleOffset=0))
        sched = self.describe(name)["triggerConfig"]["triggerProperties"]["Scheduled"]
        self.assertEqual(sched["scheduleOffset"], 0)
        self.assertEqual(sched["scheduleExpression"], "rate(1hours)")

    def test_wrong_json_types(self):
        # A member of the wrong JSON type is undecodable: SerializationException, as AWS
        for what, members in (("a task that is not an object", {"tasks": ["Map"]}),
                              ("tasks an object", {"tasks": {"taskType": "Map"}}),
                              ("tags a list", {"tags": ["a"]}),
                              ("triggerConfig a string", {"triggerConfig": "OnDemand"})):
            with self.subTest(what):
                r = h.aws_request(self.port, s3_flow("wrong_types", **members),
                                  path="/create-flow")
                self.assertEqual((r.status, r.error_type), (400, "SerializationException"),
                                 repr(r))
        self.assertGone("wrong_types")

    def test_create_flow_validation(self):
        cases = [
            # (what, members over s3_flow's, mentions)
            ("flowName of 257", {"flowName": "x" * 257}, ["flowName"]),
            ("flowName of 1", {"flowName": "a"}, ["flowName"]),
            ("flowName missing", {"flowName": None}, ["flowName"]),
            ("flowName empty", {"flowName": ""}, ["flowName"]),
            ("flowName starting _", {"flowName": "_ab"}, ["flowName"]),
            ("flowName with a space", {"flowName": "a b"}, ["flowName"]),
            ("flowName with /", {"flowName": "a/b"}, ["flowName"]),
            ("flowName not ASCII", {"flowName": "fl\u00f6w"}, ["flowName"]),
            ("description of 2049", {"description": WORDS_2048 + "x"}, ["description"]),
            ("description with ;", {"description": "semi;colon"}, ["description"]),
            ("description with <", {"description": "a<b"}, ["description"]),
            ("kmsArn of 19", {"kmsArn": KMS_20[:-1]}, ["kmsArn"]),
            ("kmsArn of 2049", {"kmsArn": KMS_2048 + "k"}, ["kmsArn"]),
            ("kmsArn not KMS", {"kmsArn": "arn:aws:s3:::bucket-name-here"}, ["kmsArn"]),
            ("kmsArn account not digits", {"kmsArn": "arn:aws:kms:us-east-1:acct:key/x"},
             ["kmsArn"]),
            ("triggerConfig missing", {"triggerConfig": None}, ["triggerConfig"]),
            ("triggerType missing", {"triggerConfig": {}}, ["triggerType"]),
            ("triggerType unknown", {"triggerConfig": {"triggerType": "Sometimes"}},
             ["triggerType"]),
            ("Scheduled without properties", {"triggerConfig": {"triggerType": "Scheduled"}},
             ["triggerProperties"]),
            ("Scheduled without expression",
             {"triggerConfig": {"triggerType": "Scheduled",
                                "triggerProperties": {"Scheduled": {"timezone": "UTC"}}}},
             ["scheduleExpression"]),
            ("scheduleExpression not rate or cron",
             {"triggerConfig": h.trigger("Scheduled", "every hour")}, ["scheduleExpression"]),
            ("scheduleExpression unclosed",
             {"triggerConfig": h.trigger("Scheduled", "rate(5minutes")}, ["scheduleExpression"]),
            ("scheduleExpression of 257",
             {"triggerConfig": h.trigger("Scheduled", "rate(" + "1" * 251 + ")")},
             ["scheduleExpression"]),
            ("scheduleOffset 36001",
             {"triggerConfig": h.trigger("Scheduled", scheduleOffset=36001)}, ["scheduleOffset"]),
            ("scheduleOffset -1",
             {"triggerConfig": h.trigger("Scheduled", scheduleOffset=-1)}, ["scheduleOffset"]),
            ("flowErrorDeactivationThreshold 101",
             {"triggerConfig": h.trigger("Scheduled", flowErrorDeactivationThreshold=101)},
             ["flowErrorDeactivationThreshold"]),
            ("flowErrorDeactivationThreshold -1",
             {"triggerConfig": h.trigger("Scheduled", flowErrorDeactivationThreshold=-1)},
             ["flowErrorDeactivationThreshold"]),
            ("timezone of 257",
             {"triggerConfig": h.trigger("Scheduled", timezone="z" * 257)}, ["timezone"]),
            ("sourceFlowConfig missing", {"sourceFlowConfig": None}, ["sourceFlowConfig"]),
            ("source connectorType missing",
             {"sourceFlowConfig": {"sourceConnectorProperties": {"S3": {"bucketName": "b"}}}},
             ["connectorType"]),
            ("source connectorType unknown",
             {"sourceFlowConfig": {"connectorType": "Nope",
                                   "sourceConnectorProperties": {"S3": {"bucketName": "b"}}}},
             ["connectorType"]),
            ("sourceConnectorProperties missing", {"sourceFlowConfig": {"connectorType": "S3"}},
             ["sourceConnectorProperties"]),
            ("destinationFlowConfigList missing", {"destinationFlowConfigList": None},
             ["destinationFlowConfigList"]),
            ("destinationFlowConfigList empty", {"destinationFlowConfigList": []},
             ["destinationFlowConfigList"]),
            ("two destinations", {"destinationFlowConfigList": h.S3_DESTINATIONS * 2},
             ["destinationFlowConfigList", "exactly one destination"]),
            ("destinationConnectorProperties missing",
             {"destinationFlowConfigList": [{"connectorType": "S3"}]},
             ["destinationConnectorProperties"]),
            ("second destination without connectorType",
             {"destinationFlowConfigList": h.S3_DESTINATIONS + [
                 {"destinationConnectorProperties": {"S3": {"bucketName": "d"}}}]},
             ["connectorType"]),
            # A required list that is absent or empty passes the model's check (proto2 cannot
            # tell them apart; AWS takes []): AppFlow's own rule says what is missing.
            ("tasks missing", {"tasks": None}, ["projection task or a MAP_ALL task"]),
            ("tasks empty", {"tasks": []}, ["projection task or a MAP_ALL task"]),
            # So a task without sourceFields is no longer refused for it: alone it lacks the
            # projection; a sourceFields member the model refuses stands in for the member.
            ("task without sourceFields", {"tasks": [{"taskType": "Map"}]},
             ["projection task or a MAP_ALL task"]),
            ("sourceFields element of 2049",
             {"tasks": h.S3_TASKS + [{"taskType": "Map", "sourceFields": ["f" * 2049]}]},
             ["tasks.3.member.sourceFields"]),
            ("task without taskType", {"tasks": [{"sourceFields": ["a"]}]}, ["taskType"]),
            ("taskType unknown", {"tasks": [{"sourceFields": ["a"], "taskType": "Nope"}]},
             ["taskType", "enum value set"]),
            ("51 tags", {"tags": tags(51)}, ["tags"]),
            ("tag key of 129", {"tags": {"k" * 129: "v"}}, ["tags"]),
            ("tag key empty", {"tags": {"": "v"}}, ["tags"]),
            ("tag key aws:", {"tags": {"aws:team": "v"}}, ["tags"]),
            ("tag key with a space", {"tags": {"a b": "v"}}, ["tags"]),
            ("tag value of 257", {"tags": {"k": "v" * 257}}, ["tags"]),
            ("tag value with &", {"tags": {"k": "a&b"}}, ["tags"]),
            ("clientToken of 257", {"clientToken": "t" * 257}, ["clientToken"]),
            ("clientToken with a control character", {"clientToken": "tok\x01en"},
             ["clientToken"]),
            ("clientToken with a tab", {"clientToken": "tok\ten"}, ["clientToken"]),
            ("clientToken not ASCII", {"clientToken": "caf\u00e9"}, ["clientToken"]),
        ]
        for i, (what, members, mentions) in enumerate(cases):
            with self.subTest(what):
                name = f"invalid_{i:02d}"
                self.assertError("create_flow", "ValidationException", mentions,
                                 **s3_flow(name, **members))
                self.assertGone(name)

    def test_create_flow_struct_members_checked(self):
        # botocore shapes the connector settings by the model; raw JSON reaches what it cannot.
        # A nested member of the wrong JSON type is undecodable: SerializationException (the
        # typed transcoder refuses it, as AWS's restJson1 does), naming the member's path.
        cases = [
            ("sourceFields not a list", {"tasks": [{"sourceFields": "a", "taskType": "Map"}]},
             "sourceFields"),
            ("sourceFields of numbers", {"tasks": [{"sourceFields": [1], "taskType": "Map"}]},
             "sourceFields"),
            ("taskType a number", {"tasks": [{"sourceFields": ["a"], "taskType": 7}]},
             "taskType"),
            ("connectorType a number",
             {"sourceFlowConfig": {"connectorType": 3, "sourceConnectorProperties": {}}},
             "connectorType"),
            ("sourceConnectorProperties a string",
             {"sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties": "S3"}},
             "sourceConnectorProperties"),
        ]
        for i, (what, members, mention) in enumerate(cases):
            with self.subTest(what):
                name = f"raw_invalid_{i}"
                r = h.aws_request(self.port, s3_flow(name, **members), path="/create-flow")
                self.assertEqual((r.status, r.error_type), (400, "SerializationException"),
                                 repr(r))
                self.assertIn(mention, r.message)
                self.assertRegex(r.request_id or "", h.UUID_RE)
                self.assertGone(name)

    def test_name_taken(self):
        self.assertCreated("taken", "Scheduled")
        for kind in ("Scheduled", "OnDemand"):
            self.assertError("create_flow", "ConflictException", ["taken"],
                             client=self.client, **s3_flow("taken", kind))
        self.assertError("create_flow", "ConflictException", ["seed_ondemand"],
                         **s3_flow("seed_ondemand"))
        self.assertEqual(self.describe("taken")["triggerConfig"]["triggerType"], "Scheduled")

    def test_create_flow_client_token(self):
        name = "created_once"
        members = s3_flow(name, "Scheduled", clientToken="create-token-1", description="first")
        first = self.assertMetadata(self.client.create_flow(**members))
        self.assertEqual(first, {"flowArn": arn(name), "flowStatus": "Draft"})
        created = self.describe(name)["createdAt"]
        self.start(name)
        # the same token and parameters: the first response again, and nothing changes
        again = self.assertMetadata(self.client.create_flow(**members))
        self.assertEqual(again, first)
        d = self.describe(name)
        self.assertEqual((d["flowStatus"], d["createdAt"]), ("Active", created))
        # the same token with other parameters, another token, or none (botocore fills one)
        changed = dict(members, description="second")
        self.assertError("create_flow", "ConflictException", client=self.client, **changed)
        self.assertError("create_flow", "ConflictException", client=self.client,
                         **dict(members, clientToken="create-token-2"))
        no_token = {k: v for k, v in members.items() if k != "clientToken"}
        self.assertError("create_flow", "ConflictException", client=self.client, **no_token)
        self.assertEqual(self.describe(name)["description"], "first")

    # ---- StartFlow ----

    def test_start_from_every_state(self):
        cases = [("seed_event_draft", "Active"), ("seed_sched_suspended", "Active"),
                 ("seed_sched_errored", "Active"), ("seed_event_errored", "Active"),
                 ("seed_sched_active", "Active"), ("seed_event_active", "Active")]
        for name, after in cases:
            with self.subTest(name):
                self.assertStartResult(self.start(name), name, after)
                self.assertEqual(self.status(name), after)
        for name in ("seed_sched_deprecated", "seed_event_deprecated"):
            with self.subTest(name):
                self.assertError("start_flow", "ConflictException", flowName=name)
                self.assertEqual(self.status(name), "Deprecated")

    def test_on_demand_run(self):
        name = "run_me"
        self.assertCreated(name)
        self.assertNotIn("lastRunExecutionDetails", self.describe(name))
        before = time.time()
        r1 = self.start(name)
        after = time.time()
        self.assertEqual(set(r1), {"flowArn", "flowStatus", "executionId"})
        self.assertEqual((r1["flowArn"], r1["flowStatus"]), (arn(name), "Active"))
        self.assertRegex(r1["executionId"], ANY_UUID)
        d = self.describe(name)
        self.assertEqual(d["flowStatus"], "Active")
        run = d["lastRunExecutionDetails"]
        self.assertEqual(run["mostRecentExecutionStatus"], "Successful")
        self.assertRecent(run["mostRecentExecutionTime"], before, after, "mostRecentExecutionTime")
        self.assertIsInstance(run.get("mostRecentExecutionMessage"), str)
        r2 = self.start(name)
        self.assertRegex(r2["executionId"], ANY_UUID)
        self.assertNotEqual(r2["executionId"], r1["executionId"], "a new run, a new id")
        self.assertError("stop_flow", "UnsupportedOperationException", flowName=name)
        self.delete(name)  # an on-demand flow needs no force
        self.assertGone(name)

    def test_start_flow_client_token_on_demand(self):
        self.assertCreated("token_run")
        self.assertCreated("token_run_other")
        first = self.start("token_run", clientToken="start-token-1")
        self.assertRegex(first["executionId"], ANY_UUID)
        self.assertEqual(self.start("token_run", clientToken="start-token-1"), first)
        other = self.start("token_run", clientToken="start-token-2")
        self.assertNotEqual(other["executionId"], first["executionId"])
        self.assertEqual(self.start("token_run", clientToken="start-token-1"), first)
        # a token belongs to its flow: the same token on another flow starts that flow's run
        elsewhere = self.start("token_run_other", clientToken="start-token-1")
        self.assertEqual(elsewhere["flowArn"], arn("token_run_other"))
        self.assertNotEqual(elsewhere["executionId"], first["executionId"])
        self.assertIn("lastRunExecutionDetails", self.describe("token_run_other"))

    def test_start_flow_client_token_scheduled(self):
        name = "token_sched"
        self.assertCreated(name, "Scheduled")
        first = self.start(name, clientToken="sched-token")
        self.assertStartResult(first, name, "Active")
        self.stop(name)
        # the retry returns the first result and does not start the flow again
        self.assertEqual(self.start(name, clientToken="sched-token"), first)
        self.assertEqual(self.status(name), "Suspended")
        self.assertStartResult(self.start(name, clientToken="sched-token-2"), name, "Active")
        self.assertEqual(self.status(name), "Active")

    def test_start_flow_validation(self):
        cases = [("clientToken of 257", {"clientToken": "t" * 257}, "clientToken"),
                 ("clientToken control", {"clientToken": "\x7f"}, "clientToken"),
                 ("clientToken not ASCII", {"clientToken": "\u00e9t\u00e9"}, "clientToken"),
                 ("flowName of 257", {"flowName": "s" * 257}, "flowName"),
                 ("flowName pattern", {"flowName": "-ab"}, "flowName"),
                 ("flowName empty", {"flowName": ""}, "flowName")]
        for what, kwargs, mention in cases:
            with self.subTest(what):
                kwargs = {"flowName": "seed_ondemand_checks", **kwargs}
                self.assertError("start_flow", "ValidationException", [mention], **kwargs)
        self.assertNotIn("lastRunExecutionDetails", self.describe("seed_ondemand_checks"))
        resp = self.start("seed_ondemand_checks", clientToken="t" * 256)
        self.assertEqual(resp["flowStatus"], "Active")
        self.assertIn("lastRunExecutionDetails", self.describe("seed_ondemand_checks"))

    # ---- StopFlow, DeleteFlow ----

    def test_stop_rows(self):
        self.assertCreated("stop_draft", "Scheduled")
        self.assertError("stop_flow", "ConflictException", ["stop_draft"], flowName="stop_draft")
        self.assertError("stop_flow", "UnsupportedOperationException", ["seed_ondemand"],
                         flowName="seed_ondemand")
        self.assertError("stop_flow", "ConflictException", flowName="seed_sched_deprecated")

    def test_delete_rows(self):
        refused = ["del_sched_active", "del_event_active"]
        for name in refused:
            with self.subTest(name):
                for kwargs in ({}, {"forceDelete": False}):
                    msg = self.assertError("delete_flow", "ConflictException", flowName=name,
                                           **kwargs)
                    self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
                self.assertEqual(self.status(name), "Active")
                self.delete(name, force=True)
                self.assertGone(name)
        for name in ("del_sched_errored", "del_event_errored", "del_sched_draft",
                     "del_event_suspended", "del_sched_deprecated", "del_ondemand_active"):
            with self.subTest(name):
                self.delete(name)
                self.assertGone(name)
                self.assertError("delete_flow", "ResourceNotFoundException", [name],
                                 flowName=name)
        self.assertError("delete_flow", "ValidationException", ["flowName"], flowName="a b")

    # ---- every operation on a flow that is not there ----

    def test_not_found_every_operation(self):
        name = "not_there"
        for op in ("describe_flow", "start_flow", "stop_flow", "delete_flow"):
            with self.subTest(op):
                self.assertError(op, "ResourceNotFoundException", [name], flowName=name)
        arns = [arn(name), arn("seed_tagged", region="eu-west-1"),
                arn("seed_tagged", account="123456789012"),
                "arn:aws:appflow:us-east-1:000000000000:connectorprofile/seed_tagged",
                "arn:aws:appflow:us-east-1:000000000000:flow/" + "f" * 468]
        self.assertEqual(len(arns[-1]), 512)
        for a in arns:
            with self.subTest(a[:60]):
                self.assertError("tag_resource", "ResourceNotFoundException", resourceArn=a,
                                 tags={"k": "v"})
                self.assertError("untag_resource", "ResourceNotFoundException", resourceArn=a,
                                 tagKeys=["k"])
                self.assertError("list_tags_for_resource", "ResourceNotFoundException",
                                 resourceArn=a)
        self.assertEqual(self.list_tags("seed_tagged"), {"team": "data", "env": "test"})

    # ---- tags ----

    def test_tags(self):
        name = "tagged"
        self.assertCreated(name, tags={"team": "data"})
        self.assertEqual(self.list_tags(name), {"team": "data"})
        resp = self.client.tag_resource(resourceArn=arn(name), tags={"env": "prod", "team": "ml"})
        self.assertEqual(self.assertMetadata(resp), {})
        want = {"team": "ml", "env": "prod"}
        self.assertEqual(self.list_tags(name), want)
        self.assertEqual(self.describe(name)["tags"], want)
        listed = [f for f in self.all_flows() if f["flowName"] == name]
        self.assertEqual(listed[0]["tags"], want)
        resp = self.client.untag_resource(resourceArn=arn(name), tagKeys=["team", "absent"])
        self.assertEqual(self.assertMetadata(resp), {})
        self.assertEqual(self.list_tags(name), {"env": "prod"})
        self.client.untag_resource(resourceArn=arn(name), tagKeys=["absent"])  # not an error
        self.client.untag_resource(resourceArn=arn(name), tagKeys=["env"])
        self.assertEqual(self.list_tags(name), {})
        self.assertEqual(self.describe(name)["tags"], {})  # an output map is always written

    def test_untagged_flow_lists_no_tags(self):
        resp = self.client.list_tags_for_resource(resourceArn=arn("seed_untagged"))
        self.assertEqual(self.assertMetadata(resp), {"tags": {}})
        r = h.aws_request(self.port, None, method="GET",
                          path="/tags/" + arn("seed_untagged").replace(":", "%3A").replace(
                              "/", "%2F"))
        # A top-level output map is always written: no tags is {"tags": {}}.
        self.assertEqual((r.status, r.json()), (200, {"tags": {}}), repr(r))

    def test_tag_limit_counts_after_merging(self):
        name = "tag_limit"
        self.assertCreated(name, tags=tags(45))
        self.assertError("tag_resource", "ValidationException", ["tags"], resourceArn=arn(name),
                         tags=tags(6, "n"))
        self.assertEqual(len(self.list_tags(name)), 45, "a refused TagResource changes nothing")
        self.client.tag_resource(resourceArn=arn(name), tags=tags(5, "n"))
        self.assertEqual(len(self.list_tags(name)), 50)
        # replacing values of keys it has adds nothing
        self.client.tag_resource(resourceArn=arn(name), tags={"k00": "new", "n04": "new"})
        got = self.list_tags(name)
        self.assertEqual((len(got), got["k00"], got["n04"]), (50, "new", "new"))
        self.assertError("tag_resource", "ValidationException", ["tags"], resourceArn=arn(name),
                         tags={"one_more": "v"})
        self.client.untag_resource(resourceArn=arn(name), tagKeys=["k00"])
        self.client.tag_resource(resourceArn=arn(name), tags={"one_more": "v"})
        self.assertEqual(len(self.list_tags(name)), 50)

    def test_tag_validation(self):
        name = "tag_checks"
        self.assertCreated(name, tags={"keep": "me"})
        a = arn(name)
        cases = [
            ("tag_resource", {"tags": tags(51)}, "tags"),
            ("tag_resource", {"tags": {"k" * 129: "v"}}, "tags"),
            ("tag_resource", {"tags": {"aws:team": "v"}}, "tags"),
            ("tag_resource", {"tags": {"": "v"}}, "tags"),
            ("tag_resource", {"tags": {"a b": "v"}}, "tags"),
            ("tag_resource", {"tags": {"k": "v" * 257}}, "tags"),
            ("tag_resource", {"tags": {"k": "a&b"}}, "tags"),
            ("untag_resource", {"tagKeys": []}, "tagKeys"),
        ]
        for op, kwargs, mention in cases:
            with self.subTest(f"{op} {str(kwargs)[:60]}"):
                self.assertError(op, "ValidationException", [mention], resourceArn=a, **kwargs)
        self.assertEqual(self.list_tags(name), {"keep": "me"})
        # tags {} is accepted now (an empty required map, which AWS takes) and changes nothing
        self.assertEqual(self.assertMetadata(self.client.tag_resource(resourceArn=a, tags={})),
                         {})
        self.assertEqual(self.list_tags(name), {"keep": "me"})
        self.client.tag_resource(resourceArn=a, tags={"k" * 128: "v" * 256, "AWS:x": ""})
        self.assertEqual(self.list_tags(name), {"keep": "me", "k" * 128: "v" * 256, "AWS:x": ""})

    def test_bad_resource_arns(self):
        bad = ["not-an-arn", "arn:aws:appflow:us-east-1:acct:flow/seed_tagged",
               "arn:aws:appflow", "arn:aws:appflow:us-east-1:000000000000:flow/" + "f" * 469,
               "ARN:AWS:appflow:us-east-1:000000000000:flow/seed_tagged"]
        self.assertEqual(len(bad[3]), 513)
        for a in bad:
            with self.subTest(a[:60]):
                self.assertError("tag_resource", "ValidationException", ["resourceArn"],
                                 resourceArn=a, tags={"k": "v"})
                self.assertError("untag_resource", "ValidationException", ["resourceArn"],
                                 resourceArn=a, tagKeys=["team"])
                self.assertError("list_tags_for_resource", "ValidationException",
                                 ["resourceArn"], resourceArn=a)
        self.assertEqual(self.list_tags("seed_tagged"), {"team": "data", "env": "test"})

    # ---- ListFlows ----

    def all_flows(self, max_results=None):
        flows, token, pages = [], None, 0
        while True:
            kwargs = {} if max_results is None else {"maxResults": max_results}
            if token:
                kwargs["nextToken"] = token
            resp = self.assertMetadata(self.client.list_flows(**kwargs))
            flows += resp.get("flows", [])
            pages += 1
            token = resp.get("nextToken")
            if not token:
                return flows
            self.assertLess(pages, 10000, "ListFlows never ends")

    def test_list_flows_definitions(self):
        self.assertCreated("listed_sched", "Scheduled", description="listed", tags={"a": "b"})
        # One destination (AppFlow's rule), of another connector type than the source's.
        self.assertCreated("listed_run", destinationFlowConfigList=[
            {"connectorType": "Upsolver", "destinationConnectorProperties": {
                "Upsolver": {"bucketName": "upsolver-appflow-out",
                             "s3OutputFormatConfig": {"prefixConfig": {"prefixType": "PATH"}}}}}])
        before = time.time()
        self.start("listed_run")
        after = time.time()
        flows = {f["flowName"]: f for f in self.all_flows()}
        d = flows["listed_sched"]
        created = self.describe("listed_sched")
        self.assertEqual({k: d.get(k) for k in (
            "flowArn", "flowName", "description", "flowStatus", "sourceConnectorType",
            "destinationConnectorType", "triggerType", "tags", "createdAt", "lastUpdatedAt")},
            {"flowArn": arn("listed_sched"), "flowName": "listed_sched", "description": "listed",
             "flowStatus": "Draft", "sourceConnectorType": "S3", "destinationConnectorType": "S3",
             "triggerType": "Scheduled", "tags": {"a": "b"}, "createdAt": created["createdAt"],
             "lastUpdatedAt": created["lastUpdatedAt"]})
        self.assertNotIn("lastRunExecutionDetails", d)
        run = flows["listed_run"]
        self.assertEqual((run["triggerType"], run["flowStatus"], run["destinationConnectorType"]),
                         ("OnDemand", "Active", "Upsolver"))
        self.assertEqual(run["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
                         "Successful")
        self.assertRecent(run["lastRunExecutionDetails"]["mostRecentExecutionTime"], before,
                          after, "mostRecentExecutionTime")
        seeded = flows["seed_tagged"]
        self.assertEqual((seeded["flowArn"], seeded["triggerType"], seeded["tags"]),
                         (arn("seed_tagged"), "Event", {"team": "data", "env": "test"}))

    def test_list_flows_max_results(self):
        for n in (1, 2, 100):
            with self.subTest(maxResults=n):
                resp = self.assertMetadata(self.client.list_flows(maxResults=n))
                total = len(self.all_flows())
                self.assertEqual(len(resp["flows"]), min(n, total))
                self.assertEqual("nextToken" in resp, total > n)
        resp = self.assertMetadata(self.client.list_flows())
        self.assertEqual(len(resp["flows"]), min(100, len(self.all_flows())))
        for n in (101, -1, 1000):
            with self.subTest(maxResults=n):
                self.assertError("list_flows", "ValidationException", ["maxResults"],
                                 maxResults=n)
        # 0 is under the model's minimum: botocore refuses it before sending. Sent anyway, it
        # is a present value (proto2 presence), and the server refuses it as AWS does.
        with self.assertRaises(botocore.exceptions.ParamValidationError) as cm:
            self.client.list_flows(maxResults=0)
        self.assertIn("maxResults", str(cm.exception))
        self.assertError("list_flows", "ValidationException", [
            "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value "
            "greater than or equal to 1"], client=self.loose, maxResults=0)

    def test_list_flows_bad_tokens(self):
        token = self.assertMetadata(self.client.list_flows(maxResults=1))["nextToken"]
        self.assertTrue(token)
        self.assertEqual(len(self.assertMetadata(
            self.client.list_flows(maxResults=1, nextToken=token))["flows"]), 1)
        bad = ["garbage", "x" * 2048, "x" * 2049, token + "x", token[:-4], token[1:], "a b",
               "=" * 8]
        bad += [h.tampered(token, i) for i in sorted({0, len(token) // 3, len(token) // 2,
                                                      2 * len(token) // 3})]
        for t in bad:
            if t == token:
                continue
            with self.subTest(token=t[:60]):
                self.assertError("list_flows", "ValidationException", ["nextToken"],
                                 maxResults=1, nextToken=t)


class ConfigTest(h.ServerTestCase):
    def test_region_and_account_make_the_arns(self):
        # the client signs for eu-west-2 (where its calls act); its key "test" names no account
        srv = self.start_http(None, "--region", "eu-west-2", "--account", "123456789012")
        c = h.boto3_appflow(srv.http_port, region="eu-west-2")
        self.addCleanup(c.close)
        here = arn("regional", region="eu-west-2", account="123456789012")
        resp = c.create_flow(**s3_flow("regional", tags={"a": "b"}))
        self.assertEqual(resp["flowArn"], here)
        self.assertEqual(c.describe_flow(flowName="regional")["flowArn"], here)
        self.assertEqual(c.list_flows()["flows"][0]["flowArn"], here)
        self.assertEqual(c.list_tags_for_resource(resourceArn=here)["tags"], {"a": "b"})
        with self.assertRaises(c.exceptions.ResourceNotFoundException):
            c.list_tags_for_resource(resourceArn=arn("regional"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
