"""The flow lifecycle through Debian's AWS CLI v2 (/usr/bin/aws): `aws appflow create-flow`,
describe-flow, list-flows, start-flow, stop-flow, delete-flow, tag-resource, untag-resource and
list-tags-for-resource against the real binary, in a clean environment with dummy credentials.

The story (create -> start -> stop -> start -> delete refused -> delete --force-delete ->
describe gives ResourceNotFoundException), an on-demand flow's runs, idempotency tokens, tags,
and one invocation per error row: each error must be the CLI's single line
`An error occurred (<Type>) when calling the <Operation> operation: <message>` with exit
status 254, the message naming the member at fault.

The CLI's own model (v2.9) predates clientToken on CreateFlow and StartFlow; AWS_DATA_PATH
gives it AWS's current shape of those members (harness.aws_data_path), so --client-token exists
and the CLI fills a fresh UUID into each call without one. Timestamps are shown as sent
(cli_timestamp_format = wire): epoch seconds. Values botocore would refuse before sending
(a missing required member, a kmsArn under 20 characters) go through a second configuration
with parameter_validation = false. The CLI runs in workers that imported it once
(tests/e2e/aws_cli.py: the entry point /usr/bin/aws runs, each call with its own environment,
driver and session); independent calls run in parallel."""

import concurrent.futures
import json
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from aws_cli import AwsCli  # noqa: E402

AWS = "/usr/bin/aws"  # Debian's awscli (v2.9); the one first on PATH may be another
CLI_SERVICE_ERROR = 254  # an error the service returned
CLI_PARAM_ERROR = 252  # the CLI refused the parameters itself
ERROR_LINE = re.compile(r"^An error occurred \((?P<type>\w+)\) when calling the (?P<op>\w+) "
                        r"operation: (?P<message>.+)$")
ANY_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
arn = h.arn

FLOWS = [
    h.flow("cli_draft", "Scheduled", "Draft"),
    h.flow("cli_deprecated", "Event", "Deprecated"),
    h.flow("cli_tagged", "Event", "Suspended", tags={"team": "data"}),
    h.flow("cli_untagged", "Scheduled", "Suspended"),
]


def cli_env(config):
    """A clean environment whose CLI config file holds config. AWS_MAX_ATTEMPTS=2: standard
    retries cover only 5xx, throttling and connection errors, none of which a correct server
    sends here, and a retried call shows "(reached max retries: 1)", which the tests refuse."""
    data_path = h.aws_data_path(os.path.join(h.package_dir("awscli"), "botocore", "data"))
    env = h.aws_client_env(AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="2",
                           AWS_DATA_PATH=data_path)
    with open(env["AWS_CONFIG_FILE"], "w", encoding="utf-8") as f:
        f.write("[default]\n" + config)
    return env


class Run:
    """One finished CLI invocation: argv, returncode, stdout, stderr, and output (stdout's
    JSON, {} when the CLI printed nothing)."""

    def __init__(self, argv, proc):
        self.argv, self.returncode = argv, proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr

    @property
    def output(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}

    def __repr__(self):
        return (f"aws {' '.join(self.argv)[:300]} -> {self.returncode}\nstdout: "
                f"{self.stdout[:500]}\nstderr: {self.stderr[:500]}")


class AwsCliLifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(AWS, os.X_OK):
            raise SystemExit(f"{AWS} (Debian's awscli) is required")
        cls.server = h.start_http_server(FLOWS)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.env = cli_env("cli_timestamp_format = wire\n")
        cls.loose_env = cli_env("cli_timestamp_format = wire\nparameter_validation = false\n")
        cls.files = h.tempdir("appflowd-e2e-cli-")
        cls.cli = AwsCli()
        cls.addClassCleanup(cls.cli.close)

    # ---- running the CLI ----

    def aws(self, op, *args, loose=False):
        argv = ["appflow", op, *args, "--endpoint-url", f"http://127.0.0.1:{self.port}",
                "--cli-read-timeout", "30", "--cli-connect-timeout", "5"]
        proc = self.cli.run(argv, self.loose_env if loose else self.env, timeout=120)
        return Run(argv, proc)

    def parallel(self, calls):
        """Runs each (op, args, loose) at once (3 at a time); returns the Runs in order."""
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(self.aws, op, *args, loose=loose)
                       for op, args, loose in calls]
            return [f.result() for f in futures]

    def ok(self, run):
        """A successful run: exit 0, nothing on stderr. Returns its JSON output."""
        self.assertEqual(run.returncode, 0, repr(run))
        self.assertEqual(run.stderr.strip(), "", repr(run))
        return run.output

    def assertCliError(self, run, etype, op, mentions=()):
        """The CLI's one error line for etype from op, exit 254, nothing on stdout; the message
        contains each of mentions. Returns the message."""
        self.assertEqual(run.returncode, CLI_SERVICE_ERROR, repr(run))
        self.assertEqual(run.stdout, "", repr(run))
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, repr(run))
        m = ERROR_LINE.match(lines[0])
        self.assertTrue(m, repr(run))
        self.assertEqual((m.group("type"), m.group("op")), (etype, op), repr(run))
        self.assertNotIn("reached max retries", lines[0])
        for mention in mentions:
            self.assertIn(mention, m.group("message"), repr(run))
        return m.group("message")

    def create_args(self, members):
        """create-flow's options for CreateFlow members (AWS JSON): JSON for structures."""
        args = []
        for k, v in members.items():
            opt = "--" + re.sub(r"(?<=[a-z])(?=[A-Z])", "-", k).lower()
            args += [opt, v if isinstance(v, str) else json.dumps(v)]
        return args

    def input_file(self, name, members):
        path = os.path.join(self.files, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(members, f)
        return "file://" + path

    def assertRecent(self, t, before, after, what):
        self.assertIsInstance(t, (int, float), f"{what}: epoch seconds, not {t!r}")
        self.assertGreaterEqual(t, before - 2, what)
        self.assertLessEqual(t, after + 2, what)

    # ---- the story ----

    def test_story(self):
        name = "cli_story"
        members = h.s3_flow(name, "Scheduled", description="S3 to S3, hourly.",
                            tags={"team": "data"})
        before = time.time()
        out = self.ok(self.aws("create-flow", *self.create_args(members)))
        after = time.time()
        self.assertEqual(out, {"flowArn": arn(name), "flowStatus": "Draft"})
        d = self.ok(self.aws("describe-flow", "--flow-name", name))
        for k, v in members.items():
            self.assertEqual(d.get(k), v, f"describe-flow gives {k} back unchanged")
        self.assertEqual((d["flowArn"], d["flowName"], d["flowStatus"]),
                         (arn(name), name, "Draft"))
        self.assertRecent(d["createdAt"], before, after, "createdAt")
        self.assertRecent(d["lastUpdatedAt"], before, after, "lastUpdatedAt")
        self.assertNotIn("lastRunExecutionDetails", d)
        self.assertEqual(self.ok(self.aws("start-flow", "--flow-name", name)),
                         {"flowArn": arn(name), "flowStatus": "Active"})
        self.assertEqual(self.ok(self.aws("stop-flow", "--flow-name", name)),
                         {"flowArn": arn(name), "flowStatus": "Suspended"})
        self.assertEqual(self.ok(self.aws("start-flow", "--flow-name", name)),
                         {"flowArn": arn(name), "flowStatus": "Active"})
        msg = self.assertCliError(self.aws("delete-flow", "--flow-name", name),
                                  "ConflictException", "DeleteFlow")
        self.assertEqual(msg, h.AWS_MSG_DELETE_ACTIVE)
        self.assertEqual(self.ok(self.aws("delete-flow", "--flow-name", name, "--force-delete")),
                         {})
        self.assertCliError(self.aws("describe-flow", "--flow-name", name),
                            "ResourceNotFoundException", "DescribeFlow", [name])

    def test_on_demand_runs(self):
        name = "cli_run"
        members = h.s3_flow(name)
        out = self.ok(self.aws("create-flow", "--cli-input-json", self.input_file(name, members)))
        self.assertEqual(out, {"flowArn": arn(name), "flowStatus": "Active"})
        first = self.ok(self.aws("start-flow", "--flow-name", name, "--client-token", "run-1"))
        before = time.time()
        self.assertEqual(set(first), {"flowArn", "flowStatus", "executionId"})
        self.assertEqual((first["flowArn"], first["flowStatus"]), (arn(name), "Active"))
        self.assertRegex(first["executionId"], ANY_UUID)
        again, fresh = self.parallel([
            ("start-flow", ["--flow-name", name, "--client-token", "run-1"], False),
            ("start-flow", ["--flow-name", name], False)])  # the CLI fills in a new token
        self.assertEqual(self.ok(again), first, "the same token: the first run's answer")
        self.assertNotEqual(self.ok(fresh)["executionId"], first["executionId"])
        d = self.ok(self.aws("describe-flow", "--flow-name", name))
        run = d["lastRunExecutionDetails"]
        self.assertEqual(run["mostRecentExecutionStatus"], "Successful")
        self.assertRecent(run["mostRecentExecutionTime"], before, time.time(),
                          "mostRecentExecutionTime (of the second run)")
        self.assertEqual(d["sourceFlowConfig"], members["sourceFlowConfig"])
        stop, delete = self.parallel([("stop-flow", ["--flow-name", name], False),
                                      ("delete-flow", ["--flow-name", "cli_draft"], False)])
        self.assertCliError(stop, "UnsupportedOperationException", "StopFlow", [name])
        self.assertEqual(self.ok(delete), {}, "a Draft flow is deleted without force")
        self.ok(self.aws("delete-flow", "--flow-name", name))  # on-demand: no force needed

    def test_create_flow_client_token(self):
        name = "cli_once"
        args = self.create_args(h.s3_flow(name, "Event")) + ["--client-token", "create-1"]
        first = self.ok(self.aws("create-flow", *args))
        self.assertEqual(first, {"flowArn": arn(name), "flowStatus": "Draft"})
        same, other = self.parallel([
            ("create-flow", args, False),
            ("create-flow", args[:-1] + ["create-2"], False)])
        self.assertEqual(self.ok(same), first, "a retry with the same token: 200, same answer")
        self.assertCliError(other, "ConflictException", "CreateFlow", [name])

    # ---- tags ----

    def test_tags(self):
        a = arn("cli_tagged")
        self.assertEqual(self.ok(self.aws("tag-resource", "--resource-arn", a, "--tags",
                                          json.dumps({"env": "prod", "team": "ml"}))), {})
        self.assertEqual(self.ok(self.aws("list-tags-for-resource", "--resource-arn", a)),
                         {"tags": {"env": "prod", "team": "ml"}})
        self.assertEqual(self.ok(self.aws("untag-resource", "--resource-arn", a, "--tag-keys",
                                          "team", "absent")), {})
        listed, untagged = self.parallel([
            ("list-tags-for-resource", ["--resource-arn", a], False),
            ("list-tags-for-resource", ["--resource-arn", arn("cli_untagged")], False)])
        self.assertEqual(self.ok(listed), {"tags": {"env": "prod"}})
        # A top-level output map is always written: no tags is {"tags": {}}.
        self.assertEqual(self.ok(untagged), {"tags": {}})
        # An empty tag map is accepted (proto2 cannot tell it from absent; AWS takes {}) and
        # changes nothing.
        self.assertEqual(self.ok(self.aws("tag-resource", "--resource-arn", a, "--tags", "{}")),
                         {})
        self.assertEqual(self.ok(self.aws("list-tags-for-resource", "--resource-arn", a)),
                         {"tags": {"env": "prod"}})

    # ---- ListFlows ----

    def test_list_flows_pages(self):
        first = self.ok(self.aws("list-flows", "--max-results", "2"))
        self.assertEqual(len(first["flows"]), 2)
        self.assertTrue(first["nextToken"])
        second = self.ok(self.aws("list-flows", "--max-results", "2", "--next-token",
                                  first["nextToken"]))
        names = [f["flowName"] for f in first["flows"] + second["flows"]]
        self.assertEqual(len(names), len(set(names)), f"a flow listed twice: {names}")
        for f in first["flows"]:
            self.assertEqual(f["flowArn"], arn(f["flowName"]))
            self.assertIn(f["flowStatus"], ("Active", "Draft", "Suspended", "Deprecated"))
            self.assertIsInstance(f["createdAt"], (int, float))

    # ---- one invocation per error row ----

    def test_error_rows(self):
        def create(name, loose=False, **members):
            members = h.s3_flow(name, **members)
            if loose:  # the CLI insists on its required options; an input file may omit them
                return ("create-flow", ["--cli-input-json", self.input_file(name, members)],
                        True)
            return ("create-flow", self.create_args(members), False)

        tagged = arn("cli_tagged")
        rows = [
            # (call, error type, operation, mentions)
            (create("my flow"), "ValidationException", "CreateFlow", ["flowName"]),
            (create("cli_bad_desc", description="semi;colon"), "ValidationException",
             "CreateFlow", ["description"]),
            (create("cli_bad_kms", True, kmsArn="arn:aws:kms:x:1:k"), "ValidationException",
             "CreateFlow", ["kmsArn"]),
            (create("cli_bad_sched", triggerConfig=h.trigger("Scheduled", "hourly")),
             "ValidationException", "CreateFlow", ["scheduleExpression"]),
            (create("cli_no_trigger", True, triggerConfig=None), "ValidationException",
             "CreateFlow", ["triggerConfig"]),
            (create("cli_bad_source", sourceFlowConfig={
                "connectorType": "Nope", "sourceConnectorProperties": {}}),
             "ValidationException", "CreateFlow", ["connectorType"]),
            (create("cli_no_dest", destinationFlowConfigList=[]), "ValidationException",
             "CreateFlow", ["destinationFlowConfigList"]),
            # tasks [] passes the model's check (proto2 cannot tell it from absent, and AWS
            # takes []): AppFlow's own rule says what is missing, in AppFlow's words.
            (create("cli_no_tasks", tasks=[]), "ValidationException", "CreateFlow",
             ["You must specify a projection task or a MAP_ALL task"]),
            (create("cli_aws_tag", tags={"aws:team": "x"}), "ValidationException", "CreateFlow",
             ["tags"]),
            (create("cli_51_tags", tags={f"k{i}": "v" for i in range(51)}),
             "ValidationException", "CreateFlow", ["tags"]),
            (create("cli_long_token", clientToken="t" * 257), "ValidationException",
             "CreateFlow", ["clientToken"]),
            (create("cli_deprecated"), "ConflictException", "CreateFlow", ["cli_deprecated"]),
            (("describe-flow", ["--flow-name", "cli_nope"], False),
             "ResourceNotFoundException", "DescribeFlow", ["cli_nope"]),
            (("start-flow", ["--flow-name", "cli_nope"], False),
             "ResourceNotFoundException", "StartFlow", ["cli_nope"]),
            (("start-flow", ["--flow-name", "cli_deprecated"], False),
             "ConflictException", "StartFlow", ["cli_deprecated"]),
            (("start-flow", ["--flow-name", "cli_deprecated", "--client-token", "\u00e9"],
              False), "ValidationException", "StartFlow", ["clientToken"]),
            (("stop-flow", ["--flow-name", "cli_nope"], False),
             "ResourceNotFoundException", "StopFlow", ["cli_nope"]),
            (("stop-flow", ["--flow-name", "cli_deprecated"], False),
             "ConflictException", "StopFlow", ["cli_deprecated"]),
            (("delete-flow", ["--flow-name", "cli_nope"], False),
             "ResourceNotFoundException", "DeleteFlow", ["cli_nope"]),
            (("list-flows", ["--max-results", "101"], False),
             "ValidationException", "ListFlows", ["maxResults"]),
            (("list-flows", ["--next-token", "garbage"], False),
             "ValidationException", "ListFlows", ["nextToken"]),
            (("tag-resource", ["--resource-arn", "not-an-arn", "--tags", '{"a": "b"}'], False),
             "ValidationException", "TagResource", ["resourceArn"]),
            (("tag-resource", ["--resource-arn", arn("cli_nope"), "--tags", '{"a": "b"}'],
              False), "ResourceNotFoundException", "TagResource", []),
            # --tags {} is accepted now (an empty required map, as AWS takes it: test_tags);
            # a tag key the model refuses is the tags error instead.
            (("tag-resource", ["--resource-arn", tagged, "--tags", '{"aws:team": "x"}'], False),
             "ValidationException", "TagResource", ["tags", "Map keys"]),
            (("untag-resource", ["--resource-arn", tagged, "--tag-keys", "[]"], False),
             "ValidationException", "UntagResource", ["tagKeys"]),
            (("untag-resource", ["--resource-arn", arn("cli_nope"), "--tag-keys", "a"], False),
             "ResourceNotFoundException", "UntagResource", []),
            (("list-tags-for-resource", ["--resource-arn", "arn:aws:appflow:r:acct:flow/x"],
              False), "ValidationException", "ListTagsForResource", ["resourceArn"]),
            (("list-tags-for-resource", ["--resource-arn", arn("cli_tagged", account="1")],
              False), "ResourceNotFoundException", "ListTagsForResource", []),
        ]
        runs = self.parallel([call for call, *_ in rows])
        for (call, etype, op, mentions), run in zip(rows, runs):
            with self.subTest(f"{call[0]} {' '.join(call[1])[:80]}"):
                self.assertCliError(run, etype, op, mentions)
        # maxResults 0 is under the model's minimum: the CLI refuses it without sending it
        zero = self.aws("list-flows", "--max-results", "0")
        self.assertEqual(zero.returncode, CLI_PARAM_ERROR, repr(zero))
        self.assertIn("maxResults", zero.stderr)
        # none of the refused calls made or changed a flow
        listed = self.ok(self.aws("list-flows"))
        names = {f["flowName"] for f in listed["flows"]}
        self.assertFalse({n for n in names if n.startswith(("cli_bad", "cli_no", "cli_aws",
                                                            "cli_51", "cli_long"))}, names)
        self.assertIn("cli_deprecated", names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
