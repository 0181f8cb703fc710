"""SigV4 on the AWS REST-JSON door (--aws-credentials FILE), with the real clients: Debian's AWS
CLI (/usr/bin/aws, clean environment) and boto3/botocore in process, plus http.client for what
no SDK sends (no signature, a body changed after signing, a date 20 minutes old).

Right keys pass; a wrong secret, an unknown key, no Authorization header, a tampered body and a
stale date are refused with 403 and AWS's error type and message, and a refused request changes
nothing: the flow it named is still Active, as the later authorised stop's transition shows.
Without the flag any signature (or none) is accepted and the start-up line says sigv4=off."""

import datetime
import hashlib
import os
import re
import subprocess
import sys
import unittest
from unittest import mock

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def isolate_from_aws_config():
    """botocore reads AWS_* variables and ~/.aws: make this process see none of them."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    env = h.aws_client_env()
    for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"):
        os.environ[k] = env[k]


isolate_from_aws_config()
import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.config  # noqa: E402
import botocore.credentials  # noqa: E402
import botocore.exceptions  # noqa: E402

S = h.stubs()
AWS = "/usr/bin/aws"
CLI_SERVICE_ERROR = 254

ALICE = ("AKIDALICE0000001", "alice/secret+key=")  # '/', '+' and '=' in the secret on purpose
BOB = ("AKIDBOB000000002", "bob-secret")
UNKNOWN = ("AKIDNOBODY000003", "whatever")
WRONG_SECRET = (ALICE[0], "not-alice-secret")

CREDS_FILE = f"""# appflowd e2e keys
[alice]
aws_access_key_id = {ALICE[0]}
aws_secret_access_key = {ALICE[1]}
aws_account_id = 111122223333

[bob]
aws_access_key_id = {BOB[0]}
aws_secret_access_key = {BOB[1]}
"""

MSG_MISSING = "Missing Authentication Token"
MSG_UNRECOGNIZED = "The security token included in the request is invalid."
MSG_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.")
EXPIRED_RE = re.compile(r"^Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) "
                        r"\((\d{8}T\d{6}Z) - 15 min\.\)$")

NAMES = ["cli_ok", "boto_ok", "wrong_secret", "cli_wrong_secret", "unknown_key",
         "cli_unknown_key", "no_auth", "tampered_signed", "tampered_sent", "stale", "future",
         "bob_ok", "keepalive"]
FLOWS = [h.flow(n) for n in NAMES]


def write_creds(text=CREDS_FILE):
    path = os.path.join(h.tempdir(), "credentials")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def boto_client(port, key):
    return boto3.session.Session().client(
        "appflow", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=key[0], aws_secret_access_key=key[1],
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                      proxies={}, connect_timeout=5, read_timeout=10))


_REAL_DATETIME = datetime.datetime  # botocore.auth.datetime is this module: patched below


class _Clock(datetime.datetime):
    """datetime.datetime whose utcnow() is shifted, for botocore's signer."""
    shift = datetime.timedelta(0)

    @classmethod
    def utcnow(cls):
        return _REAL_DATETIME.utcnow() + cls.shift


def signed_headers(port, body, key=ALICE, shift=None, region="us-east-1"):
    """The headers botocore's SigV4Auth adds for POST /stop-flow with body, signed with key at
    now + shift (a timedelta)."""
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=f"http://127.0.0.1:{port}/stop-flow", data=body,
        headers={"Content-Type": "application/json"})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(*key), "appflow", region)
    _Clock.shift = shift or datetime.timedelta(0)
    with mock.patch.object(botocore.auth.datetime, "datetime", _Clock):
        signer.add_auth(req)
    return dict(req.headers.items())


def run_cli(port, name, key):
    env = h.aws_client_env(AWS_ACCESS_KEY_ID=key[0], AWS_SECRET_ACCESS_KEY=key[1],
                           AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="2")
    argv = [AWS, "appflow", "stop-flow", "--flow-name", name,
            "--endpoint-url", f"http://127.0.0.1:{port}",
            "--cli-read-timeout", "10", "--cli-connect-timeout", "5"]
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


def cli_error_line(etype, message):
    return f"An error occurred ({etype}) when calling the StopFlow operation: {message}"


class SigV4Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels()
        # --account is alice's aws_account_id: a signed request acts in its key's account, and
        # the seed file's flows (and bob's, whose key names none) are --account's
        cls.server = h.start_http_server(FLOWS + cls.sentinels.flows(), "--aws-credentials",
                                         write_creds(), "--log-level", "debug",
                                         "--account", "111122223333")
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    # ---- helpers ----

    def assertUnchanged(self, name):
        """Nothing stopped name so far (a barrier first, so every earlier line has been read);
        then an authorised stop logs its one transition, from Active."""
        self.sentinels.barrier(self.server, self.stub)
        self.assertEqual(self.server.transitions_of(name), [], f"{name} changed")
        c = boto_client(self.port, ALICE)
        self.addCleanup(c.close)
        self.assertEqual(c.stop_flow(flowName=name)["flowStatus"], "Suspended")
        self.server.wait_for_line(
            lambda l: (m := h.TRANSITION_RE.match(l)) and m.group("name") == name)
        self.assertEqual(self.server.transitions_of(name), ["FLOW_STATUS_ACTIVE"])

    def assertRefused(self, r, etype, message=None):
        self.assertEqual(r.status, 403, repr(r))
        self.assertEqual(r.error_type, etype, repr(r))
        self.assertRegex(r.request_id or "", h.UUID_RE)
        self.assertEqual(r.header("Content-Type"), "application/json")
        if message is not None:
            self.assertEqual(r.message, message)
        return r.message

    def assertBotoRefused(self, key, name, etype, message):
        c = boto_client(self.port, key)
        self.addCleanup(c.close)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            c.stop_flow(flowName=name)
        err = cm.exception.response["Error"]
        self.assertEqual((err["Code"], err["Message"]), (etype, message))
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)

    # ---- tests ----

    def test_startup_line_says_sigv4_on(self):
        self.assertRegex(self.server.startup.group(0), r" sigv4=on ")

    def test_aws_cli_with_the_right_key(self):
        r = run_cli(self.port, "cli_ok", ALICE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count('"flowStatus": "Suspended"'), 1, r.stdout)
        self.server.wait_for_line(
            lambda l: (m := h.TRANSITION_RE.match(l)) and m.group("name") == "cli_ok")

    def test_boto3_with_the_right_keys(self):
        for key, name in ((ALICE, "boto_ok"), (BOB, "bob_ok")):
            c = boto_client(self.port, key)
            self.addCleanup(c.close)
            resp = c.stop_flow(flowName=name)
            self.assertEqual(resp["flowArn"], f"arn:aws:appflow:us-east-1:111122223333:flow/{name}")
            self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
            self.server.wait_for_line(
                lambda l, n=name: (m := h.TRANSITION_RE.match(l)) and m.group("name") == n)

    def test_keep_alive_connection_signed_requests(self):
        # One connection, each request signed on its own: the raw path kept per request.
        conn = h.http_connection(self.port)
        self.addCleanup(conn.close)
        body = b'{"flowName": "no_such_flow"}'
        for _ in range(3):
            r = h.aws_request(self.port, body, headers=signed_headers(self.port, body), conn=conn)
            self.assertEqual((r.status, r.error_type), (404, "ResourceNotFoundException"))
        r = h.aws_request(self.port, body, conn=conn)
        self.assertRefused(r, "MissingAuthenticationTokenException", MSG_MISSING)
        body = b'{"flowName": "keepalive"}'
        r = h.aws_request(self.port, body, headers=signed_headers(self.port, body), conn=conn)
        self.assertEqual(r.status, 200, repr(r))

    def test_wrong_secret(self):
        self.assertBotoRefused(WRONG_SECRET, "wrong_secret", "InvalidSignatureException",
                               MSG_MISMATCH)
        self.assertUnchanged("wrong_secret")

    def test_aws_cli_wrong_secret(self):
        r = run_cli(self.port, "cli_wrong_secret", WRONG_SECRET)
        self.assertEqual(r.returncode, CLI_SERVICE_ERROR, r.stderr)
        self.assertIn(cli_error_line("InvalidSignatureException", MSG_MISMATCH), r.stderr)
        self.assertUnchanged("cli_wrong_secret")

    def test_unknown_key(self):
        self.assertBotoRefused(UNKNOWN, "unknown_key", "UnrecognizedClientException",
                               MSG_UNRECOGNIZED)
        self.assertUnchanged("unknown_key")

    def test_aws_cli_unknown_key(self):
        r = run_cli(self.port, "cli_unknown_key", UNKNOWN)
        self.assertEqual(r.returncode, CLI_SERVICE_ERROR, r.stderr)
        self.assertIn(cli_error_line("UnrecognizedClientException", MSG_UNRECOGNIZED), r.stderr)
        self.assertUnchanged("cli_unknown_key")

    def test_no_authorization_header(self):
        for body in (b'{"flowName": "no_auth"}', None):
            with self.subTest(body=body):
                r = h.aws_request(self.port, body)
                self.assertRefused(r, "MissingAuthenticationTokenException", MSG_MISSING)
        # Everything but the Authorization header of a good request is not enough either.
        body = b'{"flowName": "no_auth"}'
        hdrs = signed_headers(self.port, body)
        del hdrs["Authorization"]
        self.assertRefused(h.aws_request(self.port, body, headers=hdrs),
                           "MissingAuthenticationTokenException", MSG_MISSING)
        self.assertUnchanged("no_auth")

    def test_tampered_body(self):
        signed = b'{"flowName": "tampered_signed"}'
        hdrs = signed_headers(self.port, signed)
        for sent in (b'{"flowName": "tampered_sent"}', b'{"flowName": "tampered_signed" }',
                     b'{"flowName": "tampered_signed"}\n'):
            with self.subTest(sent=sent):
                r = h.aws_request(self.port, sent, headers=hdrs)
                self.assertRefused(r, "InvalidSignatureException", MSG_MISMATCH)
        # x-amz-content-sha256 naming the signed body does not help the changed one
        hdrs["X-Amz-Content-SHA256"] = hashlib.sha256(signed).hexdigest()
        r = h.aws_request(self.port, b'{"flowName": "tampered_sent"}', headers=hdrs)
        self.assertRefused(r, "InvalidSignatureException",
                           "The provided 'x-amz-content-sha256' header does not match what was "
                           "computed.")
        self.assertUnchanged("tampered_sent")
        self.assertUnchanged("tampered_signed")

    def test_stale_date(self):
        body = b'{"flowName": "stale"}'
        hdrs = signed_headers(self.port, body, shift=datetime.timedelta(minutes=-20))
        msg = self.assertRefused(h.aws_request(self.port, body, headers=hdrs),
                                 "InvalidSignatureException")
        m = EXPIRED_RE.match(msg)
        self.assertIsNotNone(m, msg)
        self.assertEqual(m.group(1), hdrs["X-Amz-Date"])
        self.assertUnchanged("stale")

    def test_date_in_the_future(self):
        body = b'{"flowName": "future"}'
        hdrs = signed_headers(self.port, body, shift=datetime.timedelta(minutes=20))
        msg = self.assertRefused(h.aws_request(self.port, body, headers=hdrs),
                                 "InvalidSignatureException")
        self.assertTrue(msg.startswith(f"Signature not yet current: {hdrs['X-Amz-Date']} is "
                                       "still later than "), msg)
        # Within the 15 minutes is fine (a 5-minute skew, either way).
        for minutes in (-5, 5):
            with self.subTest(minutes=minutes):
                b = b'{"flowName": "no_such_flow"}'
                r = h.aws_request(self.port, b, headers=signed_headers(
                    self.port, b, shift=datetime.timedelta(minutes=minutes)))
                self.assertEqual(r.status, 404, repr(r))
        self.assertUnchanged("future")

    def test_a_request_acts_in_the_region_it_is_signed_for(self):
        # As one AWS endpoint per region: the flows of us-east-1 (the server's --region, where
        # the seed file put them) are not in eu-west-1's.
        body = b'{"flowName": "bob_ok"}'
        r = h.aws_request(self.port, body,
                          headers=signed_headers(self.port, body, region="eu-west-1"))
        self.assertEqual(r.status, 404, repr(r))
        self.assertEqual(r.error_type, "ResourceNotFoundException")
        r = h.aws_request(self.port, body, headers=signed_headers(self.port, body))
        self.assertNotEqual(r.status, 404, repr(r))  # stopped now, or by a test before


class WithoutFlagTest(h.ServerTestCase):
    def test_any_signature_accepted_and_startup_line_says_off(self):
        srv = self.start_http([h.flow("fa"), h.flow("fb"), h.flow("fc")])
        self.assertRegex(srv.startup.group(0), r" sigv4=off ")
        c = boto_client(srv.http_port, UNKNOWN)
        self.addCleanup(c.close)
        self.assertEqual(c.stop_flow(flowName="fa")["flowStatus"], "Suspended")
        r = h.aws_request(srv.http_port, {"flowName": "fb"})
        self.assertEqual(r.status, 200, repr(r))
        body = b'{"flowName": "fc"}'
        hdrs = signed_headers(srv.http_port, body, key=WRONG_SECRET,
                              shift=datetime.timedelta(hours=-5))
        self.assertEqual(h.aws_request(srv.http_port, body, headers=hdrs).status, 200)
        for n in ("fa", "fb", "fc"):
            srv.wait_for_line(lambda l, n=n: (m := h.TRANSITION_RE.match(l)) and
                              m.group("name") == n)


class FlagErrorsTest(unittest.TestCase):
    def test_bad_credentials_file_names_the_line(self):
        path = write_creds("[a]\naws_access_key_id = AKIDA\naws_secret_access_key = s\n"
                           "aws_session_token = t\n")
        r = h.run_appflowd("--http-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                           "--aws-credentials", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"appflowd: --aws-credentials {path}:4: unknown key 'aws_session_token'",
                      r.stderr)

    def test_missing_file(self):
        path = os.path.join(h.tempdir(), "nope")
        r = h.run_appflowd("--http-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                           "--aws-credentials", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"appflowd: --aws-credentials {path}: No such file or directory", r.stderr)

    def test_needs_the_http_door(self):
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--aws-credentials", write_creds())
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--aws-credentials needs --http-listen", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
