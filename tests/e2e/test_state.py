"""The admin listener's snapshot and reset, for test suites: GET /state writes every account and
region's registrations, profiles and flows as one seed file (credentials left out), POST /reset
removes them all and loads the --flows file again, and a /state document given to a new
appflowd as --flows makes the same state again.
"""

import http.client
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import boto3  # noqa: E402
import botocore.config  # noqa: E402

HOME, A, B = "000000000000", "111111111111", "222222222222"
EU = "eu-west-1"
ADMIN = ("--admin-listen", "127.0.0.1:0")
# Secrets given as credentials: none may ever show in a state document.
SECRETS = ["seed-secret-7f3a", "home-secret-91c2", "a-secret-44d0", "a-password-c3b8"]
LAMBDA = "arn:aws:lambda:us-east-1:000000000000:function:crm"


def client(port, key, region="us-east-1"):
    return boto3.session.Session().client(
        "appflow", region_name=region, endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=key, aws_secret_access_key="test",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                      proxies={}, connect_timeout=5, read_timeout=30))


def salesforce_profile(name, secret):
    return {"connectorProfileName": name, "connectorType": "Salesforce", "connectionMode": "Public",
            "connectorProfileConfig": {
                "connectorProfileProperties": {
                    "Salesforce": {"instanceUrl": "https://example.my.salesforce.com"}},
                "connectorProfileCredentials": {
                    "Salesforce": {"accessToken": secret, "refreshToken": secret + "-r"}}}}


def snowflake_profile(name, password):
    return {"connectorProfileName": name, "connectorType": "Snowflake", "connectionMode": "Public",
            "connectorProfileConfig": {
                "connectorProfileProperties": {"Snowflake": {
                    "warehouse": "WH", "stage": "DB.PUBLIC.STAGE", "bucketName": "stage-bucket"}},
                "connectorProfileCredentials": {
                    "Snowflake": {"username": "loader", "password": password}}}}


def salesforce_flow(name, profile, kind="OnDemand", **more):
    return h.s3_flow(name, kind, sourceFlowConfig={
        "connectorType": "Salesforce", "connectorProfileName": profile,
        "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}},
        tasks=[{"sourceFields": ["Id"], "taskType": "Filter",
                "connectorOperator": {"Salesforce": "PROJECTION"}}], **more)


REGISTRATION = {"connectorLabel": "crm", "connectorProvisioningType": "LAMBDA",
                "connectorProvisioningConfig": {"lambda": {"lambdaArn": LAMBDA}}}

# The seed file: the default account's entries, and one in account A (the same flow name as
# one of the default account's: another flow).
SEED = [
    REGISTRATION,
    salesforce_profile("seed-sf", SECRETS[0]),
    dict(salesforce_flow("seeded", "seed-sf"), flowStatus="Active"),
    dict(h.s3_flow("seeded", "Scheduled"), accountId=A, region="us-east-1", flowStatus="Suspended",
         tags={"from": "seed"}),
]


def key(e):
    """What an entry is: (account, region, kind, name)."""
    for kind, member in (("flow", "flowName"), ("profile", "connectorProfileName"),
                         ("connector", "connectorLabel")):
        if member in e:
            return e["accountId"], e["region"], kind, e[member]
    raise AssertionError(f"not a seed entry: {e}")


def raw_get(port, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def labels(c):
    """The custom connectors registered (ListConnectors lists the managed types too)."""
    found, kw = [], {}
    while True:
        page = c.list_connectors(**kw)
        found += [x["connectorLabel"] for x in page["connectors"] if x.get("connectorLabel")]
        if not page.get("nextToken"):
            return sorted(found)
        kw = {"nextToken": page["nextToken"]}


def flow_names(c):
    return sorted(f["flowName"] for f in c.list_flows()["flows"])


def profile_names(c):
    return sorted(p["connectorProfileName"]
                  for p in c.describe_connector_profiles()["connectorProfileDetails"])


class StateTest(h.ServerTestCase):
    def setUp(self):
        self.seed_path = h.write_seed(SEED)
        self.srv = self.start_http(None, *ADMIN, flows_path=self.seed_path)
        port = self.srv.http_port
        self.home = client(port, "test")  # not 12 digits: --account's
        self.a = client(port, A)
        self.b = client(port, B, EU)
        for c in (self.home, self.a, self.b):
            self.addCleanup(c.close)

    def state(self, srv=None):
        status, raw = raw_get((srv or self.srv).admin_port, "/state")
        self.assertEqual(status, 200, raw)
        return raw

    def populate(self):
        """Registrations, profiles and flows in three accounts and regions, some started,
        tagged or stopped."""
        home, a, b = self.home, self.a, self.b
        home.create_connector_profile(**salesforce_profile("home-sf", SECRETS[1]))
        home.create_flow(**salesforce_flow("home_od", "home-sf", description="on demand",
                                           clientToken="tok-home"))
        home.start_flow(flowName="home_od")
        home.create_flow(**h.s3_flow("home_sched", "Scheduled", tags={"team": "data"}))
        home.start_flow(flowName="home_sched")
        home.stop_flow(flowName="home_sched")
        arn = home.create_flow(**h.s3_flow("home_event", "Event"))["flowArn"]
        home.tag_resource(resourceArn=arn, tags={"added": "later"})
        a.register_connector(**REGISTRATION)
        a.create_connector_profile(**salesforce_profile("a-sf", SECRETS[2]))
        a.create_connector_profile(**snowflake_profile("a-snow", SECRETS[3]))
        a.create_flow(**salesforce_flow("a_flow", "a-sf", "Scheduled"))
        a.start_flow(flowName="a_flow")
        b.create_flow(**h.s3_flow("seeded", "Event", tags={"region": "eu"}))
        b.start_flow(flowName="seeded")
        b.create_flow(**h.s3_flow("b_draft", "Scheduled", description="never started"))

    def test_state_holds_every_account_and_region_and_no_credential(self):
        self.populate()
        raw = self.state()
        for secret in SECRETS:
            self.assertNotIn(secret.encode(), raw)
        self.assertNotIn(b"connectorProfileCredentials", raw)
        doc = json.loads(raw)
        self.assertIsInstance(doc, list)
        got = {key(e): e for e in doc}
        self.assertEqual(len(got), len(doc), "an entry is listed twice")
        expected = {
            (HOME, "us-east-1", "connector", "crm"), (HOME, "us-east-1", "profile", "seed-sf"),
            (HOME, "us-east-1", "profile", "home-sf"), (HOME, "us-east-1", "flow", "seeded"),
            (HOME, "us-east-1", "flow", "home_od"), (HOME, "us-east-1", "flow", "home_sched"),
            (HOME, "us-east-1", "flow", "home_event"), (A, "us-east-1", "flow", "seeded"),
            (A, "us-east-1", "connector", "crm"), (A, "us-east-1", "profile", "a-sf"),
            (A, "us-east-1", "profile", "a-snow"), (A, "us-east-1", "flow", "a_flow"),
            (B, EU, "flow", "seeded"), (B, EU, "flow", "b_draft")}
        self.assertEqual(set(got), expected)
        status = {k: e.get("flowStatus") for k, e in got.items() if k[2] == "flow"}
        self.assertEqual(status[(HOME, "us-east-1", "flow", "home_od")], "Active")
        self.assertEqual(status[(HOME, "us-east-1", "flow", "home_sched")], "Suspended")
        self.assertEqual(status[(HOME, "us-east-1", "flow", "home_event")], "Draft")
        self.assertEqual(status[(A, "us-east-1", "flow", "a_flow")], "Active")
        self.assertEqual(status[(A, "us-east-1", "flow", "seeded")], "Suspended")
        self.assertEqual(status[(B, EU, "flow", "seeded")], "Active")
        self.assertEqual(got[(HOME, "us-east-1", "flow", "home_event")]["tags"], {"added": "later"})
        self.assertEqual(got[(HOME, "us-east-1", "flow", "home_sched")]["tags"], {"team": "data"})
        self.assertEqual(got[(B, EU, "flow", "seeded")]["tags"], {"region": "eu"})
        self.assertEqual(got[(A, "us-east-1", "flow", "seeded")]["tags"], {"from": "seed"})
        self.assertEqual(got[(B, EU, "flow", "b_draft")]["description"], "never started")
        od = got[(HOME, "us-east-1", "flow", "home_od")]
        self.assertEqual(od["sourceFlowConfig"]["connectorProfileName"], "home-sf")
        self.assertEqual(od["triggerConfig"]["triggerType"], "OnDemand")
        snow = got[(A, "us-east-1", "profile", "a-snow")]
        self.assertEqual(snow["connectorProfileConfig"],
                         {"connectorProfileProperties": {"Snowflake": {
                             "warehouse": "WH", "stage": "DB.PUBLIC.STAGE",
                             "bucketName": "stage-bucket"}}})
        self.assertEqual(got[(A, "us-east-1", "connector", "crm")]["connectorProvisioningConfig"],
                         {"lambda": {"lambdaArn": LAMBDA}})
        # the order loads: a scope's registrations, then its profiles, then its flows
        kinds = [key(e)[2] for e in doc if key(e)[:2] == (A, "us-east-1")]
        self.assertEqual(kinds, sorted(kinds, key=["connector", "profile", "flow"].index))
        self.assertEqual(self.state(), raw, "two reads of one state differ")

    def test_reset_leaves_only_the_seed_and_the_clock_at_real_time(self):
        fresh = self.state()
        self.populate()
        ahead = self.srv.advance(86400)
        self.assertGreater(ahead["now"], time.time() + 86000)
        status, out = self.srv.control("/reset")
        self.assertEqual(status, 200, out)
        self.assertEqual(out["removed"]["flows"], 8)  # 6 made here, 2 seeded
        self.assertEqual(out["removed"]["connectorProfiles"], 4)
        self.assertEqual(out["removed"]["connectors"], 2)
        self.assertGreaterEqual(out["removed"]["schedulerRows"], 3)  # the clock, scopes A and B
        self.assertEqual(out["seeded"], {"flows": 2, "connectorProfiles": 1, "connectors": 1})
        self.assertEqual(flow_names(self.home), ["seeded"])
        self.assertEqual(flow_names(self.a), ["seeded"])
        self.assertEqual(self.a.describe_flow(flowName="seeded")["flowStatus"], "Suspended")
        self.assertEqual(flow_names(self.b), [])
        self.assertEqual(profile_names(self.home), ["seed-sf"])
        self.assertEqual(profile_names(self.a), [])
        self.assertEqual(labels(self.a), [])
        self.assertEqual(labels(self.home), ["crm"])
        self.assertEqual(self.state(), fresh)
        now = self.srv.advance(1)["now"]
        self.assertLess(abs(now - time.time()), 600, "the clock is still ahead after a reset")
        # the names are free again, and so is a clientToken: another request may take it
        self.b.create_flow(**h.s3_flow("b_draft", "Scheduled"))
        self.home.create_flow(**h.s3_flow("another", clientToken="tok-home"))

    def test_a_state_document_as_a_seed_makes_the_same_state(self):
        self.populate()
        first = self.state()
        path = h.write_seed(None, text=first.decode())
        again = self.start_http(None, *ADMIN, flows_path=path)
        self.assertEqual(json.loads(self.state(again)), json.loads(first))
        self.assertEqual(self.state(again), first)
        b = client(again.http_port, B, EU)
        self.addCleanup(b.close)
        self.assertEqual(b.describe_flow(flowName="seeded")["flowStatus"], "Active")
        self.assertEqual(flow_names(b), ["b_draft", "seeded"])

    def test_other_methods_and_paths(self):
        port = self.srv.admin_port
        for method, path in (("POST", "/state"), ("PUT", "/state"), ("DELETE", "/state"),
                             ("GET", "/reset"), ("PUT", "/reset")):
            status, raw = raw_get(port, path, method)
            self.assertEqual(status, 405, f"{method} {path}: {raw}")
            self.assertEqual(json.loads(raw)["__type"], "MethodNotAllowedException")
        status, raw = raw_get(port, "/states")
        self.assertEqual(status, 404, raw)
        self.assertEqual(json.loads(raw)["__type"], "ResourceNotFoundException")


class SeedScopeTest(unittest.TestCase):
    def refused(self, entry, words):
        path = h.write_seed([entry])
        p = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--flows", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"{path}:2:2:", p.stderr)  # the entry's '{' 
        self.assertIn(words, p.stderr)

    def test_a_malformed_account_or_region_is_refused_with_its_line(self):
        self.refused(dict(h.s3_flow("ff"), accountId="12345"),
                     "The account '12345' is not an AWS account id: it must be 12 digits")
        self.refused(dict(h.s3_flow("ff"), region="Not A Region"),
                     "The region 'Not A Region' is not an AWS region name")
        self.refused(dict(REGISTRATION, accountId=111111111111), "accountId must be a string")
        self.refused(dict(salesforce_profile("p", "s"), region=["eu-west-1"]),
                     "region must be a string")


if __name__ == "__main__":
    unittest.main()
