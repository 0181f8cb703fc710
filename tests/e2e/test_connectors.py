"""Connector profiles, connectors and entities, as a user of AppFlow meets them through boto3, the
AWS CLI v2 and gRPC: the profile lifecycle Terraform's aws_appflow_connector_profile drives,
CreateFlow refusing a flow whose profile does not exist (AWS's error and words), credentials that
go in and never come out (not in any answer, not in the log), the connectors catalog and custom
connectors, entities scripted from the seed file and reloaded by ResetConnectorMetadataCache,
pagination, and the seed file's profiles and registrations."""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from aws_cli import AwsCli  # noqa: E402

h.isolate_boto3_env()
import botocore.exceptions  # noqa: E402
import grpc  # noqa: E402

ACCOUNT = "000000000000"
SECRETS = ["sEcReT-access-token-7f3a", "sEcReT-refresh-token-91bc", "sEcReT-password-55d0",
           "sEcReT-client-secret-c0de", "sEcReT-seeded-token-aa11"]
CATALOG = json.load(open(os.path.join(h.SOURCE_DIR, "data", "connectors.json")))
ENTITIES = json.load(open(os.path.join(h.SOURCE_DIR, "data", "entities.json")))
LAMBDA = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:acme-connector"


def salesforce_profile(name, token=SECRETS[0], **more):
    d = {"connectorProfileName": name, "connectorType": "Salesforce", "connectionMode": "Public",
         "connectorProfileConfig": {
             "connectorProfileProperties": {
                 "Salesforce": {"instanceUrl": "https://example.my.salesforce.com"}},
             "connectorProfileCredentials": {
                 "Salesforce": {"accessToken": token, "refreshToken": SECRETS[1]}}}}
    d.update(more)
    return d


def snowflake_profile(name):
    return {"connectorProfileName": name, "connectorType": "Snowflake", "connectionMode": "Public",
            "connectorProfileConfig": {
                "connectorProfileProperties": {"Snowflake": {
                    "warehouse": "WH", "stage": "DB.PUBLIC.STAGE", "bucketName": "stage-bucket"}},
                "connectorProfileCredentials": {
                    "Snowflake": {"username": "loader", "password": SECRETS[2]}}}}


def salesforce_flow(name, profile, kind="OnDemand"):
    return h.s3_flow(name, kind, sourceFlowConfig={
        "connectorType": "Salesforce", "connectorProfileName": profile,
        "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}},
        tasks=[{"sourceFields": ["Id"], "taskType": "Filter",
                "connectorOperator": {"Salesforce": "PROJECTION"}}])


SEEDED_ENTITIES = {"Objects": [
    {"name": "Invoice__c", "label": "Invoice", "fields": [
        {"identifier": "Id", "label": "Invoice ID", "isPrimaryKey": True,
         "supportedFieldTypeDetails": {"v1": {"fieldType": "id", "filterOperators": ["EQUAL_TO"]}}},
        {"identifier": "Total__c", "label": "Total",
         "supportedFieldTypeDetails": {"v1": {"fieldType": "currency",
                                              "filterOperators": ["GREATER_THAN"]}}}]}]}

SEED = [
    dict(salesforce_profile("seeded-sf", token=SECRETS[4]), entities=SEEDED_ENTITIES),
    {"connectorLabel": "seeded-connector", "description": "a seeded custom connector",
     "connectorProvisioningType": "LAMBDA",
     "connectorProvisioningConfig": {"lambda": {"lambdaArn": LAMBDA}}},
    dict(salesforce_flow("seeded_sf_flow", "seeded-sf"), flowStatus="Active"),
]


class ConnectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.tempdir()
        cls.seed_path = h.write_seed(SEED, cls.dir)
        cls.server = h.start_http_server(None, "--log-level", "debug", flows_path=cls.seed_path)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.client = h.boto3_appflow(cls.port)
        cls.chan = h.channel(cls.server.port)
        cls.addClassCleanup(cls.chan.close)
        cls.cli = AwsCli()  # the AWS CLI, imported once (tests/e2e/aws_cli.py)
        cls.addClassCleanup(cls.cli.close)
        cls.pb = h.stubs().appflow_pb2
        cls.stub = h.stubs().appflow_pb2_grpc.AppFlowServiceStub(cls.chan)

    # ---- helpers ----

    def error(self, call, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            call(**kw)
        e = cm.exception.response
        return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]

    def profiles(self, **kw):
        return self.client.describe_connector_profiles(**kw)["connectorProfileDetails"]

    def post(self, path, body):
        return h.aws_request(self.port, body, path=path)

    def assertNoSecret(self, text):
        for s in SECRETS:
            self.assertNotIn(s, text)

    # ---- connector profiles ----

    def test_terraform_like_story(self):
        c = self.client
        arn = c.create_connector_profile(**salesforce_profile("tf-sf"))["connectorProfileArn"]
        self.assertEqual(arn, f"arn:aws:appflow:us-east-1:{ACCOUNT}:connectorprofile/tf-sf")
        [p] = self.profiles(connectorProfileNames=["tf-sf"])
        self.assertEqual((p["connectorProfileArn"], p["connectorProfileName"], p["connectorType"],
                          p["connectionMode"]), (arn, "tf-sf", "Salesforce", "Public"))
        self.assertTrue(p["credentialsArn"].startswith(
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:appflow!{ACCOUNT}-tf-sf-"),
            p["credentialsArn"])
        self.assertEqual(p["connectorProfileProperties"],
                         {"Salesforce": {"instanceUrl": "https://example.my.salesforce.com"}})
        self.assertEqual(p["createdAt"], p["lastUpdatedAt"])
        c.create_flow(**salesforce_flow("tf_flow", "tf-sf"))
        updated = salesforce_profile("tf-sf")["connectorProfileConfig"]
        updated["connectorProfileProperties"]["Salesforce"]["isSandboxEnvironment"] = True
        del updated["connectorProfileCredentials"]  # kept as they were
        self.assertEqual(c.update_connector_profile(
            connectorProfileName="tf-sf", connectionMode="Private",
            connectorProfileConfig=updated)["connectorProfileArn"], arn)
        [q] = self.profiles(connectorProfileNames=["tf-sf"])
        self.assertEqual(q["connectionMode"], "Private")
        self.assertEqual(q["privateConnectionProvisioningState"], {"status": "CREATED"})
        self.assertTrue(q["connectorProfileProperties"]["Salesforce"]["isSandboxEnvironment"])
        self.assertGreaterEqual(q["lastUpdatedAt"], q["createdAt"])
        self.assertEqual(q["credentialsArn"], p["credentialsArn"], "the same secret")
        code, msg, status = self.error(c.delete_connector_profile, connectorProfileName="tf-sf")
        self.assertEqual((code, status), ("ConflictException", 409))
        self.assertIn("tf_flow", msg)
        self.assertTrue(self.profiles(connectorProfileNames=["tf-sf"]), "refused: still there")
        c.delete_flow(flowName="tf_flow", forceDelete=True)
        c.delete_connector_profile(connectorProfileName="tf-sf")
        self.assertEqual(self.profiles(connectorProfileNames=["tf-sf"]), [])
        code, msg, status = self.error(c.delete_connector_profile, connectorProfileName="tf-sf")
        self.assertEqual((code, msg, status), (
            "ResourceNotFoundException", "Connector Profile with name tf-sf does not exist.", 404))

    def test_force_delete_leaves_the_flow(self):
        c = self.client
        c.create_connector_profile(**salesforce_profile("forced-sf"))
        c.create_flow(**salesforce_flow("forced_flow", "forced-sf"))
        c.delete_connector_profile(connectorProfileName="forced-sf", forceDelete=True)
        self.assertEqual(self.profiles(connectorProfileNames=["forced-sf"]), [])
        self.assertEqual(c.describe_flow(flowName="forced_flow")["sourceFlowConfig"]
                         ["connectorProfileName"], "forced-sf")

    def test_flow_with_missing_profile_is_refused_as_aws_does(self):
        code, msg, status = self.error(self.client.create_flow,
                                       **salesforce_flow("orphan_flow", "no-such-profile"))
        self.assertEqual((code, msg, status), (
            "ResourceNotFoundException",
            "Connector Profile with name no-such-profile does not exist.", 404))
        code, _, _ = self.error(self.client.describe_flow, flowName="orphan_flow")
        self.assertEqual(code, "ResourceNotFoundException", "nothing was made")
        # gRPC: the same error, NOT_FOUND
        req = self.pb.CreateFlowRequest()
        from google.protobuf import json_format
        json_format.ParseDict(h.to_proto_json(salesforce_flow("orphan_grpc", "no-such-profile")),
                              req)
        code, details, reason = h.grpc_error_of(lambda: self.stub.CreateFlow(req, timeout=10))
        self.assertEqual((code, reason), (grpc.StatusCode.NOT_FOUND, "ResourceNotFoundException"))
        self.assertEqual(details, "Connector Profile with name no-such-profile does not exist.")

    def test_flow_connector_checks(self):
        c = self.client
        c.create_connector_profile(**snowflake_profile("snow-check"))
        rows = [
            ("no profile named", salesforce_flow("chk_1", None), "ValidationException",
             "'sourceFlowConfig.connectorProfileName' is required"),
            ("profile of another type", salesforce_flow("chk_2", "snow-check"),
             "ValidationException", "is for connector type Snowflake"),
            ("unsupported pair", h.s3_flow("chk_3", destinationFlowConfigList=[{
                "connectorType": "EventBridge",
                "destinationConnectorProperties": {"EventBridge": {"object": "partner"}}}]),
             "ValidationException",
             "Connector type EventBridge is not a supported destination for source connector "
             "type S3"),
            ("a destination-only connector as the source", h.s3_flow("chk_4", sourceFlowConfig={
                "connectorType": "Redshift", "connectorProfileName": "snow-check",
                "sourceConnectorProperties": {}}), "ValidationException",
             "'sourceFlowConfig.connectorType' is Redshift, a connector that has no "
             "sourceConnectorProperties: it cannot be used there"),
        ]
        for what, req, etype, mention in rows:
            with self.subTest(what):
                req = {k: v for k, v in req.items()}
                if what == "no profile named":
                    del req["sourceFlowConfig"]["connectorProfileName"]
                code, msg, _ = self.error(c.create_flow, **req)
                self.assertEqual(code, etype, msg)
                self.assertIn(mention, msg)
        # S3 and EventBridge take no profile: a flow names none
        c.create_flow(**h.s3_flow("chk_s3_ok"))
        # UpdateFlow checks the same way
        code, msg, _ = self.error(c.update_flow, **{
            k: v for k, v in salesforce_flow("chk_s3_ok", "missing-too").items()})
        self.assertEqual((code, msg), ("ResourceNotFoundException",
                                       "Connector Profile with name missing-too does not exist."))

    def test_profile_errors(self):
        c = self.client
        c.create_connector_profile(**salesforce_profile("dup-sf"))
        code, msg, status = self.error(c.create_connector_profile, **salesforce_profile("dup-sf"))
        self.assertEqual((code, status), ("ConflictException", 409))
        self.assertIn("dup-sf", msg)
        # a retry with the same clientToken gets the first answer
        # (this botocore's model predates clientToken here: the request is sent as is)
        first = self.post("/create-connector-profile",
                          dict(salesforce_profile("tok-sf"), clientToken="t-1"))
        again = self.post("/create-connector-profile",
                          dict(salesforce_profile("tok-sf"), clientToken="t-1"))
        self.assertEqual((first.status, again.status), (200, 200), again)
        self.assertEqual(first.json()["connectorProfileArn"], again.json()["connectorProfileArn"])
        other = self.post("/create-connector-profile", dict(
            salesforce_profile("tok-sf"), clientToken="t-1", connectionMode="Private"))
        self.assertEqual((other.status, other.error_type), (409, "ConflictException"),
                         "the same token, another request")
        bad = salesforce_profile("bad-sf")
        bad["connectorProfileConfig"]["connectorProfileProperties"] = {
            "Zendesk": {"instanceUrl": "https://x.zendesk.com"}}
        rows = [
            ("properties of another connector", bad, "sets Zendesk but 'connectorType'"),
            ("no credentials", dict(salesforce_profile("bad-sf"), connectorProfileConfig={
                "connectorProfileProperties": {"Salesforce": {}}}),
             "'connectorProfileConfig.connectorProfileCredentials' is required"),
            ("S3 takes no profile", dict(salesforce_profile("bad-s3"), connectorType="S3"),
             "Connector type S3 takes no connector profile"),
            ("label on a managed connector", dict(salesforce_profile("bad-sf"),
                                                  connectorLabel="x1"),
             "'connectorLabel' is only for CustomConnector profiles"),
        ]
        for what, req, mention in rows:
            with self.subTest(what):
                code, msg, status = self.error(c.create_connector_profile, **req)
                self.assertEqual((code, status), ("ValidationException", 400), msg)
                self.assertIn(mention, msg)
        self.assertEqual(self.profiles(connectorProfileNames=["bad-sf", "bad-s3"]), [])
        code, msg, status = self.error(
            c.update_connector_profile, connectorProfileName="nope-sf", connectionMode="Public",
            connectorProfileConfig=salesforce_profile("x")["connectorProfileConfig"])
        self.assertEqual((code, msg, status), (
            "ResourceNotFoundException", "Connector Profile with name nope-sf does not exist.",
            404))
        # the model's own checks: a name with a space
        code, msg, status = self.error(c.create_connector_profile,
                                       **salesforce_profile("has space"))
        self.assertEqual((code, status), ("ValidationException", 400))
        self.assertIn("at 'connectorProfileName' failed to satisfy constraint", msg)

    def test_profile_pages_and_filters(self):
        c = self.client
        names = [f"page-sf-{i:02d}" for i in range(23)]
        for n in names:
            c.create_connector_profile(**salesforce_profile(n))
        c.create_connector_profile(**snowflake_profile("page-snow"))
        seen, token, pages = [], None, 0
        while True:
            kw = {"maxResults": 10, "connectorType": "Salesforce"}
            if token:
                kw["nextToken"] = token
            r = c.describe_connector_profiles(**kw)
            self.assertLessEqual(len(r["connectorProfileDetails"]), 10)
            seen += [p["connectorProfileName"] for p in r["connectorProfileDetails"]]
            pages += 1
            token = r.get("nextToken")
            if not token:
                break
        self.assertEqual(len(seen), len(set(seen)), "no profile twice")
        self.assertTrue(set(names) <= set(seen))
        self.assertNotIn("page-snow", seen)
        self.assertGreaterEqual(pages, 3)
        snow = self.profiles(connectorType="Snowflake", maxResults=100)
        self.assertIn("page-snow", [p["connectorProfileName"] for p in snow])
        self.assertEqual({p["connectorType"] for p in snow}, {"Snowflake"})
        self.assertEqual(len(self.profiles(connectorProfileNames=names[:3])), 3)
        self.assertLessEqual(len(self.profiles()), 20, "AppFlow's default page is 20")
        code, msg, _ = self.error(c.describe_connector_profiles, nextToken="bm90LWEtdG9rZW4")
        self.assertEqual(code, "ValidationException")
        self.assertIn("nextToken", msg)

    def test_credentials_never_come_out(self):
        c = self.client
        c.create_connector_profile(**salesforce_profile("secret-sf"))
        c.create_connector_profile(**snowflake_profile("secret-snow"))
        c.update_connector_profile(connectorProfileName="secret-sf", connectionMode="Public",
                                   connectorProfileConfig=salesforce_profile(
                                       "x", token=SECRETS[3])["connectorProfileConfig"])
        answers = [c.describe_connector_profiles(), c.describe_connector_profiles(
            connectorProfileNames=["secret-sf", "secret-snow", "seeded-sf"])]
        self.assertNoSecret(json.dumps(answers, default=str))
        r = self.cli.run(["--endpoint-url", f"http://127.0.0.1:{self.port}", "appflow",
                          "describe-connector-profiles"], h.aws_client_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("secret-sf", out)
        self.assertNoSecret(out)
        g = self.stub.DescribeConnectorProfiles(self.pb.DescribeConnectorProfilesRequest(),
                                                timeout=10)
        self.assertNoSecret(str(g))
        self.assertNoSecret(self.server.stderr_text())

    # ---- connectors ----

    def test_describe_connectors_pages_through_the_catalog(self):
        c = self.client
        configs, details, token = {}, [], None
        while True:
            kw = {"maxResults": 5}
            if token:
                kw["nextToken"] = token
            r = c.describe_connectors(**kw)
            configs.update(r["connectorConfigurations"])
            details += r["connectors"]
            token = r.get("nextToken")
            if not token:
                break
        self.assertEqual(set(configs), set(CATALOG))
        self.assertEqual(configs["Salesforce"]["supportedDestinationConnectors"],
                         CATALOG["Salesforce"]["supportedDestinationConnectors"])
        self.assertIn("seeded-connector",
                      [d.get("connectorLabel") for d in details if d["connectorType"] ==
                       "CustomConnector"])
        r = c.describe_connectors(connectorTypes=["S3", "Zendesk"])
        self.assertEqual(set(r["connectorConfigurations"]), {"S3", "Zendesk"})
        self.assertTrue(r["connectorConfigurations"]["S3"]["canUseAsSource"])
        one = c.describe_connector(connectorType="Redshift")["connectorConfiguration"]
        self.assertEqual((one["canUseAsSource"], one["canUseAsDestination"]), (False, True))
        listed, token = [], None
        while True:
            r = c.list_connectors(**({"maxResults": 7, "nextToken": token} if token
                                     else {"maxResults": 7}))
            listed += [d.get("connectorLabel") or d["connectorType"] for d in r["connectors"]]
            token = r.get("nextToken")
            if not token:
                break
        self.assertEqual(len(listed), len(set(listed)))
        self.assertTrue(set(CATALOG) | {"seeded-connector"} <= set(listed))

    def test_custom_connector_lifecycle(self):
        c = self.client
        arn = c.register_connector(connectorLabel="acme", description="ACME CRM",
                                   connectorProvisioningType="LAMBDA",
                                   connectorProvisioningConfig={"lambda": {"lambdaArn": LAMBDA}})
        self.assertEqual(arn["connectorArn"], f"arn:aws:appflow:us-east-1:{ACCOUNT}:connector/acme")
        code, _, status = self.error(c.register_connector, connectorLabel="acme",
                                     connectorProvisioningType="LAMBDA",
                                     connectorProvisioningConfig={"lambda": {"lambdaArn": LAMBDA}})
        self.assertEqual((code, status), ("ConflictException", 409))
        c.update_connector_registration(connectorLabel="acme", description="ACME CRM v2")
        cfg = c.describe_connector(connectorType="CustomConnector",
                                   connectorLabel="acme")["connectorConfiguration"]
        self.assertEqual((cfg["connectorLabel"], cfg["connectorDescription"],
                          cfg["connectorProvisioningType"],
                          cfg["connectorProvisioningConfig"]["lambda"]["lambdaArn"]),
                         ("acme", "ACME CRM v2", "LAMBDA", LAMBDA))
        profile = {"connectorProfileName": "acme-prof", "connectorType": "CustomConnector",
                   "connectorLabel": "acme", "connectionMode": "Public",
                   "connectorProfileConfig": {
                       "connectorProfileProperties": {"CustomConnector": {
                           "profileProperties": {"region": "eu"}}},
                       "connectorProfileCredentials": {"CustomConnector": {
                           "authenticationType": "APIKEY",
                           "apiKey": {"apiKey": SECRETS[3]}}}}}
        c.create_connector_profile(**profile)
        code, msg, status = self.error(c.create_connector_profile, **dict(
            profile, connectorProfileName="ghost-prof", connectorLabel="ghost"))
        self.assertEqual((code, msg, status), (
            "ResourceNotFoundException", "Connector:ghost is not registered. Please register it "
            "first before creating ConnectorProfile.", 404))
        code, msg, status = self.error(c.unregister_connector, connectorLabel="acme")
        self.assertEqual((code, status), ("ConflictException", 409))
        self.assertIn("acme-prof", msg)
        self.assertEqual([p["connectorLabel"] for p in self.profiles(
            connectorLabel="acme")], ["acme"])
        c.unregister_connector(connectorLabel="acme", forceDelete=True)
        code, _, status = self.error(c.describe_connector, connectorType="CustomConnector",
                                     connectorLabel="acme")
        self.assertEqual((code, status), ("ResourceNotFoundException", 404))
        code, _, _ = self.error(c.update_connector_registration, connectorLabel="acme",
                                description="gone")
        self.assertEqual(code, "ResourceNotFoundException")
        code, _, _ = self.error(c.register_connector, connectorLabel="nolambda",
                                connectorProvisioningType="LAMBDA")
        self.assertEqual(code, "ValidationException")

    # ---- entities ----

    def test_entities_default_seeded_and_reset(self):
        c = self.client
        c.create_connector_profile(**salesforce_profile("plain-sf"))
        plain = c.list_connector_entities(connectorProfileName="plain-sf")["connectorEntityMap"]
        default_names = [e["name"] for g in ENTITIES["Salesforce"].values() for e in g]
        self.assertEqual([e["name"] for g in plain.values() for e in g], default_names)
        fields = c.describe_connector_entity(connectorProfileName="plain-sf",
                                             connectorEntityName="Account")
        self.assertEqual([f["identifier"] for f in fields["connectorEntityFields"]],
                         [f["identifier"] for f in ENTITIES["Salesforce"]["Objects"][0]["fields"]])
        seeded = c.list_connector_entities(connectorProfileName="seeded-sf")["connectorEntityMap"]
        self.assertEqual(seeded, {"Objects": [{"name": "Invoice__c", "label": "Invoice",
                                               "hasNestedEntities": False}]})
        code, msg, status = self.error(c.describe_connector_entity,
                                       connectorProfileName="seeded-sf",
                                       connectorEntityName="Account")
        self.assertEqual((code, status), ("ResourceNotFoundException", 404), msg)
        # S3 takes no profile: its type is enough; nested entities by entitiesPath
        top = c.list_connector_entities(connectorType="S3")["connectorEntityMap"]
        bucket = [e for g in top.values() for e in g][0]
        self.assertTrue(bucket["hasNestedEntities"])
        inner = c.list_connector_entities(connectorType="S3", entitiesPath=bucket["name"])
        self.assertTrue([e for g in inner["connectorEntityMap"].values() for e in g])
        code, _, _ = self.error(c.list_connector_entities, connectorType="S3",
                                entitiesPath="no/such/prefix")
        self.assertEqual(code, "ResourceNotFoundException")
        code, msg, _ = self.error(c.list_connector_entities, connectorType="Salesforce")
        self.assertEqual(code, "ValidationException")
        self.assertIn("connectorProfileName", msg)
        code, msg, _ = self.error(c.list_connector_entities, connectorProfileName="nope-sf")
        self.assertEqual((code, msg), ("ResourceNotFoundException",
                                       "Connector Profile with name nope-sf does not exist."))
        # pages of entities (this botocore's model predates maxResults here)
        page = self.post("/list-connector-entities",
                         {"connectorProfileName": "plain-sf", "maxResults": 2}).json()
        self.assertEqual(sum(len(g) for g in page["connectorEntityMap"].values()), 2)
        rest = self.post("/list-connector-entities",
                         {"connectorProfileName": "plain-sf", "maxResults": 100,
                          "nextToken": page["nextToken"]}).json()
        self.assertNotIn("nextToken", rest)
        self.assertEqual([e["name"] for g in page["connectorEntityMap"].values() for e in g] +
                         [e["name"] for g in rest["connectorEntityMap"].values() for e in g],
                         default_names)
        # the seed file changed: ResetConnectorMetadataCache reads it again
        changed = json.loads(json.dumps(SEED))
        changed[0]["entities"]["Objects"][0]["name"] = "Payment__c"
        h.write_seed(changed, self.dir)
        reset = "/reset-connector-metadata-cache"  # newer than this botocore and AWS CLI
        try:
            r = self.post(reset, {"connectorProfileName": "seeded-sf"})
            self.assertEqual((r.status, r.json()), (200, {}))
            seeded = c.list_connector_entities(connectorProfileName="seeded-sf")
            self.assertEqual([e["name"] for e in seeded["connectorEntityMap"]["Objects"]],
                             ["Payment__c"])
        finally:
            h.write_seed(SEED, self.dir)
            self.assertEqual(self.post(reset, {"connectorProfileName": "seeded-sf"}).status, 200)
        r = self.post(reset, {"connectorProfileName": "nope-sf"})
        self.assertEqual((r.status, r.error_type), (404, "ResourceNotFoundException"))

    # ---- the AWS CLI and gRPC ----

    def aws(self, *args):
        r = self.cli.run(["--endpoint-url", f"http://127.0.0.1:{self.port}", "appflow", *args],
                         h.aws_client_env(), timeout=60)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr

    def test_aws_cli(self):
        cfg = json.dumps(snowflake_profile("cli-snow")["connectorProfileConfig"])
        rc, out, err = self.aws("create-connector-profile", "--connector-profile-name",
                                "cli-snow", "--connector-type", "Snowflake", "--connection-mode",
                                "Public", "--connector-profile-config", cfg)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out["connectorProfileArn"].endswith(":connectorprofile/cli-snow"))
        rc, out, err = self.aws("describe-connector-profiles", "--connector-type", "Snowflake")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli-snow", [p["connectorProfileName"] for p in
                                   out["connectorProfileDetails"]])
        rc, out, err = self.aws("describe-connector", "--connector-type", "Salesforce")
        self.assertEqual((rc, out["connectorConfiguration"]["connectorType"]), (0, "Salesforce"))
        rc, out, err = self.aws("list-connector-entities", "--connector-profile-name",
                                "seeded-sf")
        self.assertEqual(rc, 0, err)
        self.assertIn("Invoice__c", json.dumps(out))
        rc, out, err = self.aws("delete-connector-profile", "--connector-profile-name",
                                "cli-nope")
        self.assertEqual(rc, 254)
        self.assertIn("(ResourceNotFoundException)", err)
        self.assertIn("Connector Profile with name cli-nope does not exist.", err)

    def test_grpc(self):
        pb = self.pb
        from google.protobuf import json_format
        req = pb.CreateConnectorProfileRequest()
        json_format.ParseDict(h.to_proto_json(salesforce_profile("grpc-sf"),
                                              "CreateConnectorProfileRequest"), req)
        r = self.stub.CreateConnectorProfile(req, timeout=10)
        self.assertTrue(r.connector_profile_arn.endswith(":connectorprofile/grpc-sf"))
        d = self.stub.DescribeConnectorProfiles(pb.DescribeConnectorProfilesRequest(
            connector_profile_names=["grpc-sf"]), timeout=10)
        self.assertEqual([p.connector_profile_name for p in d.connector_profile_details],
                         ["grpc-sf"])
        code, details, reason = h.grpc_error_of(lambda: self.stub.CreateConnectorProfile(
            req, timeout=10))
        self.assertEqual((code, reason), (grpc.StatusCode.ALREADY_EXISTS, "ConflictException"),
                         details)
        cfg = self.stub.DescribeConnector(pb.DescribeConnectorRequest(
            connector_type=pb.CONNECTOR_TYPE_S3), timeout=10).connector_configuration
        self.assertTrue(cfg.can_use_as_source)
        e = self.stub.ListConnectorEntities(pb.ListConnectorEntitiesRequest(
            connector_profile_name="grpc-sf"), timeout=10)
        self.assertIn("Objects", e.connector_entity_map)
        code, details, reason = h.grpc_error_of(lambda: self.stub.DeleteConnectorProfile(
            pb.DeleteConnectorProfileRequest(connector_profile_name="grpc-none"), timeout=10))
        self.assertEqual((code, reason), (grpc.StatusCode.NOT_FOUND, "ResourceNotFoundException"))
        self.stub.DeleteConnectorProfile(pb.DeleteConnectorProfileRequest(
            connector_profile_name="grpc-sf"), timeout=10)


class DurableTest(h.ServerTestCase):
    """Profiles and registrations live in the store: they survive a restart on sqlite:, and
    replicas on one PostgreSQL database share them."""

    def test_restart_on_sqlite(self):
        url = h.new_store_url("sqlite")
        srv = self.start_http(None, "--store", url)
        c = h.boto3_appflow(srv.http_port)
        c.create_connector_profile(**salesforce_profile("durable-sf"))
        c.register_connector(connectorLabel="durable-conn", connectorProvisioningType="LAMBDA",
                             connectorProvisioningConfig={"lambda": {"lambdaArn": LAMBDA}})
        c.create_flow(**salesforce_flow("durable_flow", "durable-sf"))
        before = c.describe_connector_profiles()["connectorProfileDetails"]
        self.assertExitedCleanly(srv)
        again = self.start_http(None, "--store", url)
        c = h.boto3_appflow(again.http_port)
        self.assertEqual(c.describe_connector_profiles()["connectorProfileDetails"], before)
        cfg = c.describe_connector(connectorType="CustomConnector",
                                   connectorLabel="durable-conn")["connectorConfiguration"]
        self.assertEqual(cfg["connectorLabel"], "durable-conn")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            c.delete_connector_profile(connectorProfileName="durable-sf")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ConflictException")

    def test_replicas_on_postgresql(self):
        url = h.new_store_url("postgresql")
        a = self.start_http(None, "--store", url)
        b = self.start_http(None, "--store", url)
        ca, cb = h.boto3_appflow(a.http_port), h.boto3_appflow(b.http_port)
        ca.create_connector_profile(**salesforce_profile("shared-sf"))
        self.assertEqual([p["connectorProfileName"] for p in cb.describe_connector_profiles(
            connectorProfileNames=["shared-sf"])["connectorProfileDetails"]], ["shared-sf"])
        cb.create_flow(**salesforce_flow("shared_flow", "shared-sf"))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            ca.delete_connector_profile(connectorProfileName="shared-sf")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ConflictException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            cb.create_connector_profile(**salesforce_profile("shared-sf"))
        self.assertEqual(cm.exception.response["Error"]["Code"], "ConflictException")
        ca.register_connector(connectorLabel="shared-conn", connectorProvisioningType="LAMBDA",
                              connectorProvisioningConfig={"lambda": {"lambdaArn": LAMBDA}})
        self.assertIn("shared-conn", [d.get("connectorLabel") for d in
                                      cb.list_connectors(maxResults=100)["connectors"]])


if __name__ == "__main__":
    unittest.main()
