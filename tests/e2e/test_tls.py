"""TLS and mutual TLS on the gRPC door (--tls-cert, --tls-key, --tls-client-ca), with
certificates made by openssl for each run: a CA, a server certificate for localhost and
127.0.0.1, a client certificate from the same CA, and an unrelated CA with its own client.
Clients: Python grpcio, buf curl (--cacert, --cert, --key) and appflowctl (--tls-ca,
--tls-cert, --tls-key). Also the start-up line (tls=on, tls=mutual) and the refusal of bad
TLS files or flag combinations at start-up (exit status 2, naming the flag and the file)."""

import json
import os
import subprocess
import sys
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
pb = S.appflow_pb2
C = grpc.StatusCode

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""

_certs = None


def certs():
    """The certificates and keys (paths), made once per process with openssl: ca, server,
    client (signed by ca), other_ca and other_client (signed by other_ca). Each name maps to
    NAME.pem (certificate) and NAME.key (its key) in certs().dir."""
    global _certs
    if _certs is not None:
        return _certs
    d = h.tempdir("appflowd-e2e-tls-")
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w", encoding="utf-8") as f:
        f.write(OPENSSL_CNF)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr}")

    for ca, cn in (("ca", "appflowd-test-ca"), ("other_ca", "unrelated-test-ca")):
        openssl("req", "-x509", "-config", cnf, "-extensions", "ca_ext", *newkey, "-keyout",
                f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={cn}")
    for name, ca, cn, ext in (("server", "ca", "localhost", "server_ext"),
                              ("client", "ca", "appflow-client", "client_ext"),
                              ("other_client", "other_ca", "other-client", "client_ext")):
        openssl("req", "-new", "-config", cnf, *newkey, "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", cnf,
                "-extensions", ext)
    with open(os.path.join(d, "not-pem.txt"), "w", encoding="utf-8") as f:
        f.write("this is not a certificate\n")

    class Certs:
        dir = d

        @staticmethod
        def pem(name):
            return os.path.join(d, f"{name}.pem")

        @staticmethod
        def key(name):
            return os.path.join(d, f"{name}.key")

        @staticmethod
        def read(path):
            with open(path, "rb") as f:
                return f.read()

    _certs = Certs
    return _certs


def tls_flags(mutual=False):
    c = certs()
    flags = ["--tls-cert", c.pem("server"), "--tls-key", c.key("server")]
    return flags + (["--tls-client-ca", c.pem("ca")] if mutual else [])


def credentials(trust="ca", client=None):
    """Python channel credentials trusting trust's certificate, presenting client's
    certificate (None: none)."""
    c = certs()
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=c.read(c.pem(trust)))
    return grpc.ssl_channel_credentials(root_certificates=c.read(c.pem(trust)),
                                        private_key=c.read(c.key(client)),
                                        certificate_chain=c.read(c.pem(client)))


arn = h.arn


def run(argv, env=None):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, env=env)


def clean_env(**more):
    """This environment without proxy variables (grpc and Go clients honour them)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(more)
    return env


class TlsServerCase(unittest.TestCase):
    """One server for the class, started with MUTUAL's TLS flags; helpers for every client."""

    MUTUAL = False
    FLOWS = []

    @classmethod
    def setUpClass(cls):
        cls.certs = certs()
        cls.sentinels = h.Sentinels(n=8)
        cls.server = h.start_server(cls.FLOWS + cls.sentinels.flows(), *tls_flags(cls.MUTUAL))
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.good = cls.secure_channel(credentials("ca", "client" if cls.MUTUAL else None))
        cls.addClassCleanup(cls.good.close)
        cls.good_stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.good)

    @classmethod
    def secure_channel(cls, creds, host="127.0.0.1"):
        return grpc.secure_channel(f"{host}:{cls.server.port}", creds,
                                   options=[("grpc.enable_http_proxy", 0)])

    def stop_with(self, chan, name):
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        return stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=10)

    def assertStops(self, creds, name, host="127.0.0.1"):
        chan = self.secure_channel(creds, host)
        try:
            r = self.stop_with(chan, name)
        finally:
            chan.close()
        self.assertEqual((r.flow_arn, r.flow_status), (arn(name), pb.FLOW_STATUS_SUSPENDED))

    def assertRefused(self, chan, name):
        """A call on chan fails with UNAVAILABLE (the connection or handshake fails), and the
        flow is left alone."""
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                self.stop_with(chan, name)
        finally:
            chan.close()
        self.assertEqual(cm.exception.code(), C.UNAVAILABLE, cm.exception.details())
        self.assertUntouched(name)
        return cm.exception

    def assertUntouched(self, name):
        self.sentinels.barrier(self.server, self.good_stub)
        self.assertEqual(self.server.transitions_of(name), [], f"{name} was stopped")

    # ---- buf curl and appflowctl ----

    def buf(self, *args):
        return run([h.buf_path(), "curl", "--protocol", "grpc", *args],
                   env=clean_env(HOME=h.tempdir(), BUF_CACHE_DIR=h.tempdir()))

    def buf_stop(self, name, *tls_args):
        return self.buf(*tls_args, "-d", json.dumps({"flowName": name}),
                        f"https://127.0.0.1:{self.server.port}/appflow.v1.AppFlowService/StopFlow")

    def assertBufStopped(self, r, name):
        self.assertEqual(r.returncode, 0, f"buf curl failed: {r.stderr}")
        self.assertEqual(json.loads(r.stdout),
                         {"flowArn": arn(name), "flowStatus": "FLOW_STATUS_SUSPENDED"})

    def ctl(self, name, *tls_args, host="127.0.0.1", env=None):
        h.require_binaries("APPFLOWCTL")
        return run([h.APPFLOWCTL, "--server", f"{host}:{self.server.port}", *tls_args,
                    "stop-flow", name], env=clean_env(**(env or {})))

    def assertCtlStopped(self, r, name):
        self.assertEqual(r.returncode, 0, f"appflowctl failed: {r.stderr}")
        self.assertEqual(json.loads(r.stdout), {"flowArn": arn(name), "flowStatus": "Suspended"})

    def assertCtlUnavailable(self, r, name):
        self.assertEqual(r.returncode, 1, f"stdout {r.stdout!r} stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "")
        self.assertIn("gRPC error UNAVAILABLE when calling the StopFlow operation", r.stderr)
        self.assertUntouched(name)


def appflowctl_speaks_tls():
    h.require_binaries("APPFLOWCTL")
    r = run([h.APPFLOWCTL, "--help"])
    return all(f in r.stdout for f in ("--tls-ca", "--tls-cert", "--tls-key"))


class TlsTest(TlsServerCase):
    FLOWS = [h.flow(f"tls_{i}", "Scheduled", "Active") for i in range(12)]

    def test_startup_line_says_tls_on(self):
        line = self.server.startup.group(0)
        self.assertTrue(line.endswith(" tls=on"), line)

    def test_client_trusting_the_ca(self):
        self.assertStops(credentials("ca"), "tls_0")
        self.assertStops(credentials("ca"), "tls_1", host="localhost")  # DNS:localhost
        health = P.health_pb2_grpc.HealthStub(self.good)
        self.assertEqual(health.Check(P.health_pb2.HealthCheckRequest(), timeout=10).status,
                         P.health_pb2.HealthCheckResponse.SERVING)

    def test_client_certificate_is_not_asked_for(self):
        self.assertStops(credentials("ca", "other_client"), "tls_2")

    def test_plaintext_client_fails(self):
        self.assertRefused(h.channel(self.server.port), "tls_3")

    def test_client_trusting_another_ca_fails(self):
        self.assertRefused(self.secure_channel(credentials("other_ca")), "tls_4")
        self.assertStops(credentials("ca"), "tls_5")  # the server took no harm

    def test_buf_curl(self):
        c = self.certs
        self.assertBufStopped(self.buf_stop("tls_6", "--cacert", c.pem("ca")), "tls_6")
        r = self.buf("--cacert", c.pem("ca"), "--list-services",
                     f"https://127.0.0.1:{self.server.port}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("appflow.v1.AppFlowService", r.stdout.split())
        # trusting another CA: the handshake fails, nothing is called
        r = self.buf_stop("tls_7", "--cacert", c.pem("other_ca"))
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout, "")
        # h2c (plaintext) to the TLS port
        r = self.buf("--http2-prior-knowledge", "-d", '{"flowName": "tls_7"}',
                     f"http://127.0.0.1:{self.server.port}/appflow.v1.AppFlowService/StopFlow")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertUntouched("tls_7")

    def test_appflowctl(self):
        if not appflowctl_speaks_tls():
            self.skipTest("appflowctl has no --tls-ca/--tls-cert/--tls-key yet")
        c = self.certs
        self.assertCtlStopped(self.ctl("tls_8", "--tls-ca", c.pem("ca")), "tls_8")
        # By name, checked against DNS:localhost. The native resolver: c-ares 1.18.1 (Debian
        # 12) leaks 10 bytes on every "localhost" lookup (c-ares issue #439), which LeakSanitizer
        # would report as appflowctl's.
        self.assertCtlStopped(self.ctl("tls_9", "--tls-ca", c.pem("ca"), host="localhost",
                                       env={"GRPC_DNS_RESOLVER": "native"}), "tls_9")
        self.assertCtlUnavailable(self.ctl("tls_10"), "tls_10")  # plaintext
        self.assertCtlUnavailable(self.ctl("tls_10", "--tls-ca", c.pem("other_ca")), "tls_10")


class PlaintextServerTest(h.ServerTestCase):
    def test_tls_client_to_plaintext_server_fails(self):
        srv = self.start([h.flow("plain_1")])
        self.assertNotIn("tls=", srv.startup.group(0))
        chan = grpc.secure_channel(f"127.0.0.1:{srv.port}", credentials("ca"),
                                   options=[("grpc.enable_http_proxy", 0)])
        self.addCleanup(chan.close)
        with self.assertRaises(grpc.RpcError) as cm:
            S.appflow_pb2_grpc.AppFlowServiceStub(chan).StopFlow(
                pb.StopFlowRequest(flow_name="plain_1"), timeout=10)
        self.assertEqual(cm.exception.code(), C.UNAVAILABLE)


class MutualTlsTest(TlsServerCase):
    MUTUAL = True
    FLOWS = [h.flow(f"mtls_{i}", "Event", "Active") for i in range(12)]

    def test_startup_line_says_tls_mutual(self):
        line = self.server.startup.group(0)
        self.assertTrue(line.endswith(" tls=mutual"), line)

    def test_client_with_certificate_from_the_ca(self):
        self.assertStops(credentials("ca", "client"), "mtls_0")
        self.assertStops(credentials("ca", "client"), "mtls_1", host="localhost")

    def test_client_without_certificate_fails(self):
        self.assertRefused(self.secure_channel(credentials("ca")), "mtls_2")

    def test_client_with_certificate_from_another_ca_fails(self):
        self.assertRefused(self.secure_channel(credentials("ca", "other_client")), "mtls_3")
        self.assertStops(credentials("ca", "client"), "mtls_4")  # the server took no harm

    def test_plaintext_client_fails(self):
        self.assertRefused(h.channel(self.server.port), "mtls_5")

    def test_buf_curl(self):
        c = self.certs
        self.assertBufStopped(
            self.buf_stop("mtls_6", "--cacert", c.pem("ca"), "--cert", c.pem("client"), "--key",
                          c.key("client")), "mtls_6")
        for args in (("--cacert", c.pem("ca")),
                     ("--cacert", c.pem("ca"), "--cert", c.pem("other_client"), "--key",
                      c.key("other_client"))):
            with self.subTest(args=args):
                r = self.buf_stop("mtls_7", *args)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertEqual(r.stdout, "")
        self.assertUntouched("mtls_7")

    def test_appflowctl(self):
        if not appflowctl_speaks_tls():
            self.skipTest("appflowctl has no --tls-ca/--tls-cert/--tls-key yet")
        c = self.certs
        self.assertCtlStopped(self.ctl("mtls_8", "--tls-ca", c.pem("ca"), "--tls-cert",
                                       c.pem("client"), "--tls-key", c.key("client")), "mtls_8")
        self.assertCtlUnavailable(self.ctl("mtls_9", "--tls-ca", c.pem("ca")), "mtls_9")
        self.assertCtlUnavailable(
            self.ctl("mtls_9", "--tls-ca", c.pem("ca"), "--tls-cert", c.pem("other_client"),
                     "--tls-key", c.key("other_client")), "mtls_9")
        self.assertCtlUnavailable(self.ctl("mtls_9"), "mtls_9")


class TlsFilesTest(unittest.TestCase):
    """Bad TLS files and flag combinations stop start-up: exit status 2, a message naming the
    flag and the file, and nothing listening."""

    @classmethod
    def setUpClass(cls):
        cls.c = certs()
        cls.missing = os.path.join(cls.c.dir, "missing.pem")
        cls.not_pem = os.path.join(cls.c.dir, "not-pem.txt")

    def refused(self, *flags, usage=False):
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", *flags)
        self.assertEqual(r.returncode, 2, f"{flags}: exit {r.returncode}, stderr {r.stderr!r}")
        self.assertNotIn("listening", r.stderr)
        self.assertEqual(r.stdout, "")
        if usage:
            self.assertIn("usage: appflowd", r.stderr)
        return r.stderr

    def assertNames(self, err, flag, path, why):
        self.assertIn(f"{flag} {path}", err)
        self.assertIn(why, err)

    def test_missing_certificate(self):
        err = self.refused("--tls-cert", self.missing, "--tls-key", self.c.key("server"))
        self.assertNames(err, "--tls-cert", self.missing, "No such file or directory")

    def test_missing_key(self):
        err = self.refused("--tls-cert", self.c.pem("server"), "--tls-key", self.missing)
        self.assertNames(err, "--tls-key", self.missing, "No such file or directory")

    def test_missing_client_ca(self):
        err = self.refused(*tls_flags(), "--tls-client-ca", self.missing)
        self.assertNames(err, "--tls-client-ca", self.missing, "No such file or directory")

    @unittest.skipIf(os.geteuid() == 0, "root reads files whatever their mode")
    def test_unreadable_key(self):
        path = os.path.join(h.tempdir(), "unreadable.key")
        with open(path, "wb") as f:
            f.write(self.c.read(self.c.key("server")))
        os.chmod(path, 0)
        err = self.refused("--tls-cert", self.c.pem("server"), "--tls-key", path)
        self.assertNames(err, "--tls-key", path, "Permission denied")

    def test_key_is_a_directory(self):
        d = h.tempdir()
        err = self.refused("--tls-cert", self.c.pem("server"), "--tls-key", d)
        self.assertNames(err, "--tls-key", d, "Is a directory")

    def test_files_that_are_not_pem(self):
        for flags, flag in (
                (("--tls-cert", self.not_pem, "--tls-key", self.c.key("server")), "--tls-cert"),
                (("--tls-cert", self.c.pem("server"), "--tls-key", self.not_pem), "--tls-key"),
                ((*tls_flags(), "--tls-client-ca", self.not_pem), "--tls-client-ca")):
            with self.subTest(flag=flag):
                self.assertNames(self.refused(*flags), flag, self.not_pem, "not a PEM file")

    def test_certificate_without_key(self):
        err = self.refused("--tls-cert", self.c.pem("server"), usage=True)
        self.assertIn("--tls-cert and --tls-key go together", err)

    def test_key_without_certificate(self):
        err = self.refused("--tls-key", self.c.key("server"), usage=True)
        self.assertIn("--tls-cert and --tls-key go together", err)

    def test_client_ca_without_certificate(self):
        err = self.refused("--tls-client-ca", self.c.pem("ca"), usage=True)
        self.assertIn("--tls-client-ca needs --tls-cert and --tls-key", err)

    def test_pem_files_that_do_not_fit(self):
        """PEM files that read fine but cannot serve TLS: a key that is not the certificate's,
        and certificate and key swapped. Like any other bad TLS file: exit status 2 and a
        message about the TLS files, not about the address."""
        c = self.c
        for name, flags, path in (
                ("key of another certificate",
                 ("--tls-cert", c.pem("server"), "--tls-key", c.key("client")), c.key("client")),
                ("swapped", ("--tls-cert", c.key("server"), "--tls-key", c.pem("server")),
                 c.key("server"))):
            with self.subTest(name):
                r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", *flags)
                self.assertNotIn("listening", r.stderr)
                self.assertNotIn("address could not be used", r.stderr,
                                 "the message blames the address for bad TLS files")
                self.assertEqual(r.returncode, 2, f"stderr {r.stderr!r}")
                self.assertTrue("--tls-cert" in r.stderr or "--tls-key" in r.stderr, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
