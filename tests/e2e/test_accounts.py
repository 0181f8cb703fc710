"""Accounts and regions, as AWS has them: every flow belongs to one (account, region); ARNs
carry them; one account never sees or changes another's, and a nextToken from one is invalid in
another.

AWS door: the region is the SigV4 credential scope's; the account is the access key id itself
when it is 12 digits (as LocalStack and moto take it), else --account. gRPC door: metadata
x-amz-account-id and x-amz-region, defaulting to --account and --region.
"""

import os
import re
import signal
import sys
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

A, B = "111111111111", "222222222222"
HOME = "000000000000"  # --account's default
ADMIN = ("--admin-listen", "127.0.0.1:0")


def client(port, key, region="us-east-1"):
    return boto3.session.Session().client(
        "appflow", region_name=region, endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=key, aws_secret_access_key="test",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                      proxies={}, connect_timeout=5, read_timeout=30))


def names(c, **kw):
    return sorted(f["flowName"] for f in c.list_flows(**kw)["flows"])


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("the call succeeded")


class AccountsTest(h.ServerTestCase):
    def setUp(self):
        self.srv = self.start_http([h.flow("seeded")], *ADMIN, "--run-duration", "0")
        self.port = self.srv.http_port
        self.a = client(self.port, A)
        self.b = client(self.port, B)
        self.home = client(self.port, "test")  # not 12 digits: --account's
        self.a_eu = client(self.port, A, "eu-west-1")
        for c in (self.a, self.b, self.home, self.a_eu):
            self.addCleanup(c.close)

    def test_the_same_name_in_each_account_and_region_is_a_flow_of_its_own(self):
        arns = {}
        for who, c in (("a", self.a), ("b", self.b), ("home", self.home), ("a_eu", self.a_eu)):
            arns[who] = c.create_flow(**h.s3_flow("shared"))["flowArn"]
        self.assertEqual(arns["a"], f"arn:aws:appflow:us-east-1:{A}:flow/shared")
        self.assertEqual(arns["b"], f"arn:aws:appflow:us-east-1:{B}:flow/shared")
        self.assertEqual(arns["home"], f"arn:aws:appflow:us-east-1:{HOME}:flow/shared")
        self.assertEqual(arns["a_eu"], f"arn:aws:appflow:eu-west-1:{A}:flow/shared")
        self.a.create_flow(**h.s3_flow("only_a", description="made by A"))
        self.assertEqual(names(self.a), ["only_a", "shared"])
        self.assertEqual(names(self.b), ["shared"])
        self.assertEqual(names(self.a_eu), ["shared"])
        self.assertEqual(names(self.home), ["seeded", "shared"])  # the seed file's: --account's
        d = self.a.describe_flow(flowName="only_a")
        self.assertEqual(d["flowArn"], f"arn:aws:appflow:us-east-1:{A}:flow/only_a")
        self.assertEqual(d["createdBy"], f"arn:aws:iam::{A}:root")
        self.assertEqual(error_code(lambda: self.b.describe_flow(flowName="only_a"))[0],
                         "ResourceNotFoundException")
        # a change in one account leaves the others' flow of the same name as it was
        self.b.delete_flow(flowName="shared")
        self.assertEqual(names(self.b), [])
        self.assertEqual(self.a.describe_flow(flowName="shared")["flowArn"], arns["a"])
        self.assertEqual(self.a_eu.describe_flow(flowName="shared")["flowArn"], arns["a_eu"])

    def test_an_arn_of_another_account_names_nothing(self):
        arn = self.a.create_flow(**h.s3_flow("tagged"))["flowArn"]
        self.a.tag_resource(resourceArn=arn, tags={"team": "a"})
        self.assertEqual(self.a.list_tags_for_resource(resourceArn=arn)["tags"], {"team": "a"})
        for c in (self.b, self.a_eu, self.home):
            self.assertEqual(error_code(lambda: c.tag_resource(resourceArn=arn, tags={"x": "y"}))[0],
                             "ResourceNotFoundException")
            self.assertEqual(error_code(lambda: c.list_tags_for_resource(resourceArn=arn))[0],
                             "ResourceNotFoundException")
        self.assertEqual(self.a.list_tags_for_resource(resourceArn=arn)["tags"], {"team": "a"})

    def test_a_next_token_is_valid_in_its_own_account_only(self):
        for n in ("f1", "f2", "f3"):
            self.a.create_flow(**h.s3_flow(n))
            self.b.create_flow(**h.s3_flow(n))
        token = self.a.list_flows(maxResults=1)["nextToken"]
        self.assertEqual(len(self.a.list_flows(maxResults=1, nextToken=token)["flows"]), 1)
        for c in (self.b, self.a_eu, self.home):
            code, message = error_code(lambda: c.list_flows(maxResults=1, nextToken=token))
            self.assertEqual(code, "ValidationException")
            self.assertIn("Invalid nextToken", message)

    def test_a_schedule_of_another_account_runs_in_that_account(self):
        self.a.create_flow(**h.s3_flow("ticking", "Scheduled",
                                       triggerConfig=h.trigger("Scheduled", "rate(5minutes)")))
        self.a.start_flow(flowName="ticking")
        self.b.create_flow(**h.s3_flow("ticking"))  # on demand: B's never runs on its own
        out = self.srv.advance(600)
        self.assertEqual(out["runsStarted"], 2, out)
        runs = self.a.describe_flow_execution_records(flowName="ticking")["flowExecutions"]
        self.assertEqual([r["executionStatus"] for r in runs], ["Successful", "Successful"])
        self.assertEqual(self.b.describe_flow_execution_records(flowName="ticking")
                         ["flowExecutions"], [])

    def test_the_control_api_acts_in_the_account_its_headers_name(self):
        self.a.create_flow(**h.s3_flow("evented", "Event"))
        self.a.start_flow(flowName="evented")
        path = "/emulator/flows/evented/events"
        status, out = self.srv.control(path, {})
        self.assertEqual(status, 404, out)  # --account's has no such flow
        status, out = self.srv.control(path, {}, headers={"x-amz-account-id": A})
        self.assertEqual(status, 200, out)
        runs = self.a.describe_flow_execution_records(flowName="evented")["flowExecutions"]
        self.assertEqual([r["executionId"] for r in runs], [out["executionId"]])
        status, out = self.srv.control(path, {}, headers={"x-amz-account-id": "nope"})
        self.assertEqual((status, out["__type"]), (400, "ValidationException"), out)

    def test_the_census_counts_each_account_and_region(self):
        from prometheus_client.parser import text_string_to_metric_families
        self.a.create_flow(**h.s3_flow("one"))
        self.a.create_flow(**h.s3_flow("two"))
        self.a_eu.create_flow(**h.s3_flow("three"))
        self.a_eu.start_flow(flowName="three")
        conn = h.http.client.HTTPConnection("127.0.0.1", self.srv.admin_port, timeout=30)
        self.addCleanup(conn.close)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        flows = {}
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                if smp.name == "appflowd_flows" and smp.value:
                    labels = smp.labels
                    flows[(labels["account"], labels["region"], labels["status"])] = smp.value
        # on demand flows are Active once made; "seeded" is --account's
        self.assertEqual(flows, {(A, "us-east-1", "Active"): 2, (A, "eu-west-1", "Active"): 1,
                                 (HOME, "us-east-1", "Active"): 1})

    def test_grpc_metadata_names_the_account_and_region(self):
        self.a.create_flow(**h.s3_flow("over_aws", description="made on the AWS door"))
        S = h.stubs()
        chan = h.channel(self.srv.port)
        self.addCleanup(chan.close)
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        md_a = (("x-amz-account-id", A), ("x-amz-region", "us-east-1"))
        d = stub.DescribeFlow(S.appflow_pb2.DescribeFlowRequest(flow_name="over_aws"),
                              metadata=md_a)
        self.assertEqual(d.flow_arn, f"arn:aws:appflow:us-east-1:{A}:flow/over_aws")
        self.assertEqual(d.description, "made on the AWS door")
        lst = stub.ListFlows(S.appflow_pb2.ListFlowsRequest(), metadata=(("x-amz-account-id", A),))
        self.assertEqual([f.flow_name for f in lst.flows], ["over_aws"])
        # none: --account and --region's, where the seed file put its flows
        lst = stub.ListFlows(S.appflow_pb2.ListFlowsRequest())
        self.assertEqual([f.flow_name for f in lst.flows], ["seeded"])
        code, details, _ = h.grpc_error_of(lambda: stub.DescribeFlow(
            S.appflow_pb2.DescribeFlowRequest(flow_name="over_aws"),
            metadata=(("x-amz-account-id", B),)))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        for md, what in (((("x-amz-account-id", "12345"),), "account '12345'"),
                         ((("x-amz-account-id", "abcdefghijkl"),), "account 'abcdefghijkl'"),
                         ((("x-amz-region", "US_EAST"),), "region 'US_EAST'")):
            code, details, _ = h.grpc_error_of(lambda: stub.ListFlows(
                S.appflow_pb2.ListFlowsRequest(), metadata=md))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
            self.assertIn(what, details)


class RestartTest(h.ServerTestCase):
    @unittest.skipUnless(h.E2E_STORE == "memory", "starts its own servers on SQLite: once")
    def test_a_restart_interrupts_the_runs_of_every_account(self):
        url = h.new_store_url("sqlite")
        first = h.start_http_server(None, "--store", url, "--run-duration", "600")
        self.addCleanup(first.stop)
        c = client(first.http_port, A, "eu-west-1")
        c.create_flow(**h.s3_flow("crashed"))
        run_id = c.start_flow(flowName="crashed")["executionId"]
        c.close()
        self.assertEqual(first.stop(signal.SIGKILL), -signal.SIGKILL)
        second = self.start_http(None, "--store", url)
        second.wait_for_line(re.compile(
            r"^appflowd: info: restart: 1 run\(s\) left in progress ended as interrupted$"))
        second.wait_for_line(re.compile(
            rf"^appflowd: info: flow {A}/eu-west-1/crashed: 1 run\(s\) interrupted by the "
            r"restart$"))
        c = client(second.http_port, A, "eu-west-1")
        self.addCleanup(c.close)
        runs = c.describe_flow_execution_records(flowName="crashed")["flowExecutions"]
        self.assertEqual([(r["executionId"], r["executionStatus"]) for r in runs],
                         [(run_id, "Error")])


if __name__ == "__main__":
    unittest.main()
