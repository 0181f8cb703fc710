"""Flow runs as the emulator makes them, end to end: runs that take --run-duration and are waited
on as Apache Airflow's AppFlow operators wait (polling DescribeFlowExecutionRecords); cancels;
the emulator control API (--admin-listen) over JSON/HTTP and as the gRPC service
appflowd.emulator.v1.EmulatorService: scripted outcomes, events for event-triggered flows and
the emulator's clock; the scheduler (rate() and cron() in UTC, scheduleStartTime/EndTime/Offset,
firstExecutionFrom, contiguous data windows, flowErrorDeactivationThreshold); runs and the clock
through a crash on sqlite:, and two replicas on one PostgreSQL store firing each scheduled run
exactly once, also after one of them is SIGKILLed.

Only the Airflow-like wait lets real time pass (a run of 1 s, polled for with a short pause and
a deadline, as Airflow does); everywhere else the emulator's clock is moved instead of sleeping,
and what is waited on (a run's state, a log line) is the event, polled for with a deadline."""

import collections
import datetime
import os
import re
import signal
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

ADMIN = ("--admin-listen", "127.0.0.1:0")
EMULATOR = "appflowd.emulator.v1.EmulatorService"
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000  # in ms, as every instant here is
SCHEDULED_RUN_RE = re.compile(
    r"^appflowd: info: flow (?P<name>\S+): scheduled run (?P<id>[0-9a-f-]{36})$")
EVENT_RUN_RE = re.compile(r"^appflowd: info: flow (?P<name>\S+): event, run (?P<id>[0-9a-f-]{36})$")
START_RUN_RE = re.compile(r"^appflowd: info: flow (?P<name>\S+): run (?P<id>[0-9a-f-]{36})$")
# What an Error outcome without a message of its own reads.
DEFAULT_ERROR = "The run failed: the emulator control API scripted an Error outcome"


def ms(t):
    """An instant (datetime from boto3, or epoch seconds) in epoch milliseconds."""
    if isinstance(t, datetime.datetime):
        t = t.timestamp()
    return round(t * 1000)


def records(client, name):
    """Every run of the flow the server keeps, newest first."""
    return client.describe_flow_execution_records(flowName=name, maxResults=100)["flowExecutions"]


def record(client, name, execution_id):
    for r in records(client, name):
        if r["executionId"] == execution_id:
            return r
    raise AssertionError(f"run {execution_id} of {name} is not listed")


def scheduled(name, expression, **members):
    """CreateFlow's members for a Scheduled S3 -> S3 flow."""
    return h.s3_flow(name, "Scheduled", triggerConfig=h.trigger("Scheduled", expression, **members))


def logged_ids(servers, rx, name, at_least=0):
    """The run ids rx's lines name for flow name, in every server's log, in order. A server's
    stderr is read by a thread of the harness, so a line the server has written may not have
    been read yet when its answer arrives: wait until at_least ids have been read."""
    def read():
        out = []
        for srv in servers:
            for line in srv.lines():
                m = rx.match(line)
                if m and m.group("name") == name:
                    out.append(m.group("id"))
        return out
    if at_least:
        h.wait_until(lambda: len(read()) >= at_least, timeout=h.LOG_TIMEOUT, interval=0.02,
                     what=f"{at_least} logged run(s) of {name}")
    return read()


def wait_for_record(client, name, execution_id, statuses, timeout=30):
    """Polls DescribeFlowExecutionRecords (as Airflow's operators do: a short pause between
    polls, and a deadline) until the run's status is one of statuses; returns that record."""
    deadline = time.monotonic() + timeout
    while True:
        r = record(client, name, execution_id)
        if r["executionStatus"] in statuses:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"run {execution_id} of {name} still {r['executionStatus']} "
                                 f"after {timeout}s")
        time.sleep(0.1)


class Emulator:
    """appflowd.emulator.v1.EmulatorService on a gRPC port, its messages built from the
    descriptors the server's own reflection gives (no generated code)."""

    def __init__(self, port):
        self.chan = h.channel(port)
        protos = self.reflected_files(self.chan, EMULATOR)
        pool = descriptor_pool.DescriptorPool()
        added = set()
        while protos:
            ready = [p for p in protos if all(d in added for d in p.dependency)]
            if not ready:
                raise AssertionError("reflection left out imports of "
                                     f"{[p.name for p in protos]}")
            for p in ready:
                pool.Add(p)
                added.add(p.name)
                protos.remove(p)
        self.pool = pool
        service = pool.FindServiceByName(EMULATOR)
        self.methods = {}
        for m in service.methods:
            req, resp = self.message_class(m.input_type), self.message_class(m.output_type)
            call = self.chan.unary_unary(f"/{EMULATOR}/{m.name}",
                                         request_serializer=lambda msg: msg.SerializeToString(),
                                         response_deserializer=resp.FromString)
            self.methods[m.name] = (req, call)

    @staticmethod
    def reflected_files(chan, symbol):
        """The FileDescriptorProtos reflection answers for symbol (its file and imports)."""
        P = h.platform_stubs()
        stub = P.reflection_v1_pb2_grpc.ServerReflectionStub(chan)
        req = P.reflection_v1_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        replies = list(stub.ServerReflectionInfo(iter([req]), timeout=10))
        blobs = replies[0].file_descriptor_response.file_descriptor_proto
        if not blobs:
            raise AssertionError(f"reflection has no file for {symbol}: {replies[0]}")
        return [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]

    @staticmethod
    def services(port):
        """The services reflection lists on port."""
        P = h.platform_stubs()
        chan = h.channel(port)
        try:
            stub = P.reflection_v1_pb2_grpc.ServerReflectionStub(chan)
            req = P.reflection_v1_pb2.ServerReflectionRequest(list_services="")
            replies = list(stub.ServerReflectionInfo(iter([req]), timeout=10))
            return sorted(s.name for s in replies[0].list_services_response.service)
        finally:
            chan.close()

    def message_class(self, desc):
        get = getattr(message_factory, "GetMessageClass", None)
        return get(desc) if get else message_factory.MessageFactory(self.pool).GetPrototype(desc)

    def call(self, method, **fields):
        """Calls method with a request of these fields (nested messages as dicts)."""
        req_cls, call = self.methods[method]
        req = req_cls()
        for k, v in fields.items():
            if k == "outcomes":
                for o in v:
                    req.outcomes.add(**o)
            else:
                setattr(req, k, v)
        return call(req, timeout=30)

    def enum(self, name):
        """The number of appflow.v1.ExecutionStatus's value name (e.g. EXECUTION_STATUS_ERROR)."""
        enum = self.pool.FindEnumTypeByName("appflow.v1.ExecutionStatus")
        return enum.values_by_name[name].number

    def close(self):
        self.chan.close()


class EmulatorTest(h.ServerTestCase):
    def server(self, *extra, duration=0, admin=True):
        """A server with the AWS door (and the admin listener unless admin is False), a boto3
        client for it; its runs take duration seconds unless scripted otherwise."""
        srv = self.start_http(None, *(ADMIN if admin else ()), "--run-duration", str(duration),
                              *extra)
        if admin:
            self.assertIsNotNone(srv.admin_port, srv.startup.group(0))
        return srv, self.client(srv)

    def client(self, srv):
        """A boto3 client for srv's AWS door, closed after the test."""
        c = h.boto3_appflow(srv.http_port)
        self.addCleanup(c.close)
        return c

    def control(self, srv, path, body=None, method="POST"):
        """A control API call that must succeed; its JSON answer."""
        status, out = srv.control(path, body, method)
        self.assertEqual(status, 200, f"{method} {path} {body!r}: {out}")
        return out

    def control_error(self, srv, path, body, want_type, method="POST"):
        """A control API call that must fail with want_type: the HTTP status of that type and a
        body that is exactly {"__type", "message"}; returns the message."""
        status, out = srv.control(path, body, method)
        self.assertEqual((status, out and out.get("__type")),
                         (h.AWS_HTTP_STATUS[want_type], want_type), f"{method} {path} {body!r}")
        self.assertEqual(sorted(out), ["__type", "message"], out)
        self.assertIsInstance(out["message"], str)
        self.assertTrue(out["message"])
        return out["message"]

    def outcomes(self, srv, name, *outcomes):
        out = self.control(srv, f"/emulator/flows/{name}/outcomes", {"outcomes": list(outcomes)})
        self.assertEqual(out, {"pending": len(outcomes)})

    def activate(self, client, name):
        """StartFlow on a scheduled flow: the instant it became Active (DescribeFlow's
        lastUpdatedAt), in ms."""
        self.assertEqual(client.start_flow(flowName=name)["flowStatus"], "Active")
        return ms(client.describe_flow(flowName=name)["lastUpdatedAt"])

    def cancel(self, port, name, ids=None):
        body = {"flowName": name}
        if ids is not None:
            body["executionIds"] = ids
        # Debian's botocore predates CancelFlowExecutions: the request is sent as is
        return h.aws_request(port, body, path="/cancel-flow-executions")

    def assertContiguous(self, runs, first_pull_ms=None):
        """runs (newest first): each run pulls from where the one before it stopped, which is
        when the one before it started."""
        for newer, older in zip(runs, runs[1:]):
            self.assertEqual(ms(newer["dataPullStartTime"]), ms(older["dataPullEndTime"]))
            self.assertEqual(ms(older["dataPullEndTime"]), ms(older["startedAt"]))
        if runs:
            self.assertEqual(ms(runs[0]["dataPullEndTime"]), ms(runs[0]["startedAt"]))
            if first_pull_ms is not None:
                self.assertEqual(ms(runs[-1]["dataPullStartTime"]), first_pull_ms)

    # ---- 1. waiting on a run, as Airflow does ----

    def test_airflow_like_wait(self):
        """--run-duration 1: start_flow, then poll describe_flow_execution_records until the run
        is Successful; then a scripted 1.5 s run with records, waited on the same way."""
        srv, c = self.server(duration=1)
        c.create_flow(**h.s3_flow("waited"))
        before = time.time()
        t0 = time.monotonic()
        run_id = c.start_flow(flowName="waited")["executionId"]
        first = record(c, "waited", run_id)
        if time.monotonic() - t0 < 0.9:  # still within the run's second
            self.assertEqual(first["executionStatus"], "InProgress")
            self.assertEqual(first["executionResult"]["recordsProcessed"], 0)
            self.assertEqual(ms(first["lastUpdatedAt"]), ms(first["startedAt"]))
        r = wait_for_record(c, "waited", run_id, ("Successful", "Error", "Canceled"))
        self.assertEqual(r["executionStatus"], "Successful")
        started, updated = ms(r["startedAt"]), ms(r["lastUpdatedAt"])
        self.assertGreaterEqual(started, ms(before) - 1000)
        self.assertLessEqual(started, ms(time.time()) + 1000)
        self.assertEqual(updated - started, 1000, "--run-duration 1")
        self.assertEqual(r["executionResult"]["recordsProcessed"], 0)
        self.assertNotIn("errorInfo", r["executionResult"])
        self.assertEqual(ms(r["dataPullEndTime"]), started)
        d = c.describe_flow(flowName="waited")["lastRunExecutionDetails"]
        self.assertEqual(d["mostRecentExecutionStatus"], "Successful")
        self.assertEqual(logged_ids([srv], START_RUN_RE, "waited", 1), [run_id])

        self.outcomes(srv, "waited", {"durationSeconds": 1.5, "recordsProcessed": 42})
        second = c.start_flow(flowName="waited")["executionId"]
        r = wait_for_record(c, "waited", second, ("Successful", "Error", "Canceled"))
        self.assertEqual(r["executionStatus"], "Successful")
        self.assertEqual(ms(r["lastUpdatedAt"]) - ms(r["startedAt"]), 1500)
        self.assertEqual(r["executionResult"]["recordsProcessed"], 42)
        # the second run's window starts where the first one's ended
        self.assertEqual(ms(r["dataPullStartTime"]), started)
        self.assertEqual([x["executionId"] for x in records(c, "waited")], [second, run_id])

    # ---- 2. cancel ----

    def test_cancel_a_run_in_progress(self):
        """A 600 s run: CancelFlowExecutions makes it CancelStarted, and Canceled once the
        emulator's clock has moved on a second; unknown ids come back invalid."""
        srv, c = self.server()
        c.create_flow(**h.s3_flow("long"))
        self.outcomes(srv, "long", {"durationSeconds": 600})
        run_id = c.start_flow(flowName="long")["executionId"]
        r = record(c, "long", run_id)
        self.assertEqual(r["executionStatus"], "InProgress")
        self.assertEqual(c.describe_flow(flowName="long")["lastRunExecutionDetails"]
                         ["mostRecentExecutionStatus"], "InProgress")
        t0 = time.monotonic()
        reply = self.cancel(srv.http_port, "long", [run_id, "no-such-run"])
        self.assertEqual((reply.status, reply.json()),
                         (200, {"invalidExecutions": ["no-such-run"]}), reply)
        r = record(c, "long", run_id)
        if time.monotonic() - t0 < 0.9:  # within the second a cancel takes
            self.assertEqual(r["executionStatus"], "CancelStarted")
        else:
            self.assertIn(r["executionStatus"], ("CancelStarted", "Canceled"))
        cancelled_at = ms(r["lastUpdatedAt"]) - (1000 if r["executionStatus"] == "Canceled" else 0)
        self.assertGreater(cancelled_at, ms(r["startedAt"]))
        srv.advance(2)
        r = record(c, "long", run_id)
        self.assertEqual(r["executionStatus"], "Canceled")
        self.assertEqual(ms(r["lastUpdatedAt"]), cancelled_at + 1000)
        self.assertNotIn("errorInfo", r["executionResult"])
        # no longer in progress: invalid now, as any unknown id
        reply = self.cancel(srv.http_port, "long", [run_id])
        self.assertEqual((reply.status, reply.json()), (200, {"invalidExecutions": [run_id]}))
        unknown = "0f0f0f0f-0000-4000-8000-000000000000"
        reply = self.cancel(srv.http_port, "long", [unknown])
        self.assertEqual(reply.json(), {"invalidExecutions": [unknown]})
        reply = self.cancel(srv.http_port, "nope", [run_id])
        self.assertEqual((reply.status, reply.error_type), (404, "ResourceNotFoundException"))
        # the next run is not scripted: it takes --run-duration (0) and succeeds
        nxt = c.start_flow(flowName="long")["executionId"]
        self.assertEqual(record(c, "long", nxt)["executionStatus"], "Successful")
        reply = self.cancel(srv.http_port, "long", [nxt])
        self.assertEqual(reply.json(), {"invalidExecutions": [nxt]})

    # ---- 3. scripted outcomes ----

    def test_scripted_error_outcomes(self):
        """Outcomes set through the control API decide how the next runs end, in order: the
        record's errorInfo and counts, DescribeFlow's lastRunExecutionDetails; then Successful."""
        srv, c = self.server()
        c.create_flow(**h.s3_flow("scripted"))
        # outcomes replace those set before and not yet used
        self.outcomes(srv, "scripted", {"executionStatus": "Error"}, {"executionStatus": "Error"},
                      {"executionStatus": "Error"})
        self.outcomes(srv, "scripted",
                      {"executionStatus": "Error", "message": "Source bucket src not found",
                       "recordsProcessed": 3},
                      {"executionStatus": "Error"},
                      {"executionStatus": "Error", "message": "slow failure",
                       "durationSeconds": 60},
                      {"executionStatus": "Successful", "recordsProcessed": 1000})
        first = c.start_flow(flowName="scripted")["executionId"]
        r = record(c, "scripted", first)
        self.assertEqual(r["executionStatus"], "Error")
        self.assertEqual(r["executionResult"]["errorInfo"],
                         {"executionMessage": "Source bucket src not found", "putFailuresCount": 0})
        self.assertEqual(r["executionResult"]["recordsProcessed"], 3)
        d = c.describe_flow(flowName="scripted")["lastRunExecutionDetails"]
        self.assertEqual(d["mostRecentExecutionStatus"], "Error")
        self.assertEqual(d["mostRecentExecutionMessage"], "Source bucket src not found")

        second = c.start_flow(flowName="scripted")["executionId"]
        r = record(c, "scripted", second)
        self.assertEqual(r["executionStatus"], "Error")
        self.assertEqual(r["executionResult"]["errorInfo"],
                         {"executionMessage": DEFAULT_ERROR, "putFailuresCount": 0})
        self.assertEqual(r["executionResult"]["recordsProcessed"], 0)

        # an Error after 60 s: InProgress until the clock gets there
        third = c.start_flow(flowName="scripted")["executionId"]
        r = record(c, "scripted", third)
        self.assertEqual(r["executionStatus"], "InProgress")
        self.assertNotIn("errorInfo", r["executionResult"])
        self.assertEqual(c.describe_flow(flowName="scripted")["lastRunExecutionDetails"]
                         ["mostRecentExecutionStatus"], "InProgress")
        srv.advance(61)
        r = record(c, "scripted", third)
        self.assertEqual(r["executionStatus"], "Error")
        self.assertEqual(ms(r["lastUpdatedAt"]) - ms(r["startedAt"]), 60_000)
        self.assertEqual(r["executionResult"]["errorInfo"]["executionMessage"], "slow failure")
        d = c.describe_flow(flowName="scripted")["lastRunExecutionDetails"]
        self.assertEqual((d["mostRecentExecutionStatus"], d["mostRecentExecutionMessage"]),
                         ("Error", "slow failure"))

        fourth = c.start_flow(flowName="scripted")["executionId"]
        r = record(c, "scripted", fourth)
        self.assertEqual(r["executionStatus"], "Successful")
        self.assertEqual(r["executionResult"]["recordsProcessed"], 1000)
        self.assertNotIn("errorInfo", r["executionResult"])
        # none left: Successful from now on
        fifth = c.start_flow(flowName="scripted")["executionId"]
        r = record(c, "scripted", fifth)
        self.assertEqual((r["executionStatus"], r["executionResult"]["recordsProcessed"]),
                         ("Successful", 0))
        self.assertEqual(c.describe_flow(flowName="scripted")["lastRunExecutionDetails"]
                         ["mostRecentExecutionStatus"], "Successful")
        # an empty list clears what is pending
        self.outcomes(srv, "scripted", {"executionStatus": "Error"})
        self.outcomes(srv, "scripted")
        sixth = c.start_flow(flowName="scripted")["executionId"]
        self.assertEqual(record(c, "scripted", sixth)["executionStatus"], "Successful")
        self.assertEqual([r["executionId"] for r in records(c, "scripted")],
                         [sixth, fifth, fourth, third, second, first])

    # ---- 4. flowErrorDeactivationThreshold ----

    def test_threshold_deactivates_a_scheduled_flow(self):
        """rate(1minutes), threshold 2: two failed scheduled runs in a row suspend the flow (a
        Successful run in between resets the count); no runs after that, however far the clock
        moves, until StartFlow activates it again."""
        srv, c = self.server()
        c.create_flow(**scheduled("failing", "rate(1minutes)", flowErrorDeactivationThreshold=2))
        c.create_flow(**scheduled("recovering", "rate(1minutes)",
                                  flowErrorDeactivationThreshold=2))
        self.outcomes(srv, "failing", {"executionStatus": "Error", "message": "bad 1"},
                      {"executionStatus": "Error", "message": "bad 2"})
        self.outcomes(srv, "recovering", {"executionStatus": "Error"},
                      {"executionStatus": "Successful"}, {"executionStatus": "Error"},
                      {"executionStatus": "Error"})
        a = self.activate(c, "failing")
        b = self.activate(c, "recovering")
        out = srv.advance(300)
        self.assertEqual(out["runsStarted"], 2 + 4, out)
        for name, n, at in (("failing", 2, a), ("recovering", 4, b)):
            runs = records(c, name)
            self.assertEqual([ms(r["startedAt"]) for r in runs],
                             [at + k * MINUTE for k in range(n, 0, -1)], name)
            self.assertEqual(runs[0]["executionStatus"], "Error")
            d = c.describe_flow(flowName=name)
            self.assertEqual(d["flowStatus"], "Suspended", name)
            self.assertIn("2 consecutive failed scheduled runs", d["flowStatusMessage"])
            self.assertEqual(d["lastRunExecutionDetails"]["mostRecentExecutionStatus"], "Error")
            srv.wait_for_line(re.compile(
                rf"^appflowd: info: flow {name}: deactivated after 2 consecutive failed "
                r"scheduled runs$"))
        self.assertEqual([r["executionStatus"] for r in records(c, "recovering")],
                         ["Error", "Error", "Successful", "Error"])
        self.assertEqual(records(c, "failing")[0]["executionResult"]["errorInfo"]
                         ["executionMessage"], "bad 2")
        # Suspended: nothing more fires
        for _ in range(3):
            self.assertEqual(srv.advance(600)["runsStarted"], 0)
        self.assertEqual(len(records(c, "failing")), 2)
        self.assertEqual(len(records(c, "recovering")), 4)
        self.assertEqual(len(logged_ids([srv], SCHEDULED_RUN_RE, "failing", 2)), 2)
        deactivations = [l for l in srv.lines() if "deactivated after" in l]
        self.assertEqual(len(deactivations), 2, deactivations)
        # started again: the schedule counts from the new activation, with no failures counted
        again = self.activate(c, "failing")
        out = srv.advance(60)
        self.assertEqual(out["runsStarted"], 1, out)
        runs = records(c, "failing")
        self.assertEqual((ms(runs[0]["startedAt"]), runs[0]["executionStatus"]),
                         (again + MINUTE, "Successful"))
        self.assertEqual(c.describe_flow(flowName="failing")["flowStatus"], "Active")

    # ---- 5. schedules ----

    def test_rate_schedule_fires_from_activation(self):
        """rate(5minutes): nothing while Draft; StartFlow, then 30 minutes: six runs, at
        activation + 5 min, + 10 min ..., whose data windows are contiguous from
        firstExecutionFrom; nothing while Suspended."""
        srv, c = self.server()
        first_pull = int(time.time()) - 86400
        c.create_flow(**scheduled("every5", "rate(5minutes)", firstExecutionFrom=first_pull))
        self.assertEqual(srv.advance(900)["runsStarted"], 0, "a Draft flow does not run")
        self.assertEqual(records(c, "every5"), [])
        a = self.activate(c, "every5")
        out = srv.advance(1800)
        self.assertEqual(out["runsStarted"], 6, out)
        self.assertGreaterEqual(ms(out["now"]), a + 30 * MINUTE)
        runs = records(c, "every5")
        self.assertEqual([ms(r["startedAt"]) for r in runs],
                         [a + k * 5 * MINUTE for k in range(6, 0, -1)])
        self.assertTrue(all(r["executionStatus"] == "Successful" for r in runs))
        self.assertContiguous(runs, first_pull * 1000)
        ids = [r["executionId"] for r in runs]
        self.assertEqual(len(set(ids)), 6)
        self.assertEqual(logged_ids([srv], SCHEDULED_RUN_RE, "every5", len(ids)), ids[::-1])
        srv.wait_for_line(re.compile(r"^appflowd: info: clock moved 1800\.0+ s: 6 scheduled "
                                     r"run\(s\) started$"))
        d = c.describe_flow(flowName="every5")["lastRunExecutionDetails"]
        self.assertEqual(ms(d["mostRecentExecutionTime"]), a + 30 * MINUTE)
        # Suspended: the clock moves, nothing fires
        c.stop_flow(flowName="every5")
        self.assertEqual(srv.advance(3600)["runsStarted"], 0)
        self.assertEqual(len(records(c, "every5")), 6)

    def test_update_of_an_active_schedule_starts_it_again(self):
        """UpdateFlow of an Active scheduled flow with a new expression: the new schedule
        counts from the update, whatever the old one had computed."""
        srv, c = self.server()
        c.create_flow(**scheduled("hourly", "rate(1hours)"))
        self.activate(c, "hourly")
        self.assertEqual(srv.advance(0)["runsStarted"], 0)  # the first run computed: +1 hour
        flow = scheduled("hourly", "rate(5minutes)")
        flow.pop("tags", None)
        c.update_flow(**flow)
        u = ms(c.describe_flow(flowName="hourly")["lastUpdatedAt"])
        self.assertEqual(srv.advance(1800)["runsStarted"], 6)
        self.assertEqual([ms(r["startedAt"]) for r in records(c, "hourly")],
                         [u + k * 5 * MINUTE for k in range(6, 0, -1)])

    def test_cron_schedule_is_utc(self):
        """cron(0 6 * * ? *) with timezone America/New_York: one run a day at 06:00 UTC (the
        timezone is only a label), for each day the clock moves."""
        srv, c = self.server()
        c.create_flow(**scheduled("daily", "cron(0 6 * * ? *)", timezone="America/New_York"))
        a = self.activate(c, "daily")
        out = srv.advance(3 * 86400)
        now = ms(out["now"])
        want = [t for t in range((a // DAY) * DAY + 6 * HOUR, now + 1, DAY) if t > a]
        self.assertIn(len(want), (3, 4), (a, now))  # 4 only if activated just before 06:00
        self.assertEqual(out["runsStarted"], len(want), out)
        runs = records(c, "daily")
        self.assertEqual([ms(r["startedAt"]) for r in runs], want[::-1])
        for r in runs:
            t = r["startedAt"].astimezone(datetime.timezone.utc)
            self.assertEqual((t.hour, t.minute, t.second), (6, 0, 0), t)
        self.assertContiguous(runs)
        out = srv.advance(86400)
        self.assertEqual(out["runsStarted"], 1, out)
        self.assertEqual(ms(records(c, "daily")[0]["startedAt"]), want[-1] + DAY)
        self.assertEqual(c.describe_flow(flowName="daily")["triggerConfig"]["triggerProperties"]
                         ["Scheduled"]["timezone"], "America/New_York")

    def test_schedule_start_end_and_offset(self):
        """rate(10minutes) from a scheduleStartTime an hour away, to a scheduleEndTime 30 min
        after it, with a scheduleOffset of 30 s: the first run at the start time (plus the
        offset), then every 10 min, none after the end."""
        srv, c = self.server()
        now = int(ms(srv.advance(0)["now"]) // 1000)
        start, first_pull = now + 3600, now - 7200
        c.create_flow(**scheduled("windowed", "rate(10minutes)", scheduleStartTime=start,
                                  scheduleEndTime=start + 1800, scheduleOffset=30,
                                  firstExecutionFrom=first_pull))
        self.activate(c, "windowed")
        self.assertEqual(srv.advance(1800)["runsStarted"], 0, "before scheduleStartTime")
        out = srv.advance(3 * 3600)
        self.assertEqual(out["runsStarted"], 3, out)
        runs = records(c, "windowed")
        self.assertEqual([ms(r["startedAt"]) for r in runs],
                         [(start + 30 + k * 600) * 1000 for k in (2, 1, 0)])
        self.assertContiguous(runs, first_pull * 1000)
        self.assertEqual(srv.advance(86400)["runsStarted"], 0, "after scheduleEndTime")

    def test_seeded_active_scheduled_flow_fires(self):
        """An Active scheduled flow from the seed file fires from when it was seeded; seeded
        Draft and Suspended ones do not."""
        every_minute = h.trigger("Scheduled", "rate(1minutes)")
        srv = self.start_http([
            h.flow("seeded_tick", triggerConfig=h.trigger("Scheduled", "rate(5minutes)")),
            h.flow("seeded_draft", status="Draft", triggerConfig=every_minute),
            h.flow("seeded_suspended", status="Suspended", triggerConfig=every_minute)], *ADMIN)
        c = self.client(srv)
        d = c.describe_flow(flowName="seeded_tick")
        seeded = ms(d["createdAt"])
        self.assertEqual(ms(d["lastUpdatedAt"]), seeded)
        out = srv.advance(600)
        self.assertEqual(out["runsStarted"], 2, out)
        runs = records(c, "seeded_tick")
        self.assertEqual([ms(r["startedAt"]) for r in runs],
                         [seeded + 10 * MINUTE, seeded + 5 * MINUTE])
        self.assertContiguous(runs, seeded)
        self.assertEqual(records(c, "seeded_draft"), [])
        self.assertEqual(records(c, "seeded_suspended"), [])

    # ---- 6. events ----

    def test_events_start_runs_of_active_event_flows(self):
        """POST /emulator/flows/NAME/events: a run of an Active Event flow per event; every
        other case is an error with AWS's type in a JSON body."""
        srv, c = self.server()
        c.create_flow(**h.s3_flow("on_event", "Event"))
        c.create_flow(**h.s3_flow("by_hand"))
        c.create_flow(**scheduled("by_clock", "rate(1hours)"))
        ev = "/emulator/flows/on_event/events"
        msg = self.control_error(srv, ev, None, "ConflictException")
        self.assertIn("Draft", msg)
        self.assertEqual(c.start_flow(flowName="on_event")["flowStatus"], "Active")
        self.assertEqual(records(c, "on_event"), [], "StartFlow of an Event flow runs nothing")
        ids = [self.control(srv, ev, body)["executionId"]
               for body in (None, {}, {"detail-type": "Object Created",
                                       "detail": {"bucket": {"name": "src"}, "n": [1, 2]}})]
        self.assertEqual(len(set(ids)), 3)
        self.outcomes(srv, "on_event", {"executionStatus": "Error", "message": "event failed"})
        failed = self.control(srv, ev, {})["executionId"]
        runs = records(c, "on_event")
        self.assertEqual([r["executionId"] for r in runs], [failed] + ids[::-1])
        self.assertEqual([r["executionStatus"] for r in runs],
                         ["Error", "Successful", "Successful", "Successful"])
        self.assertEqual(runs[0]["executionResult"]["errorInfo"]["executionMessage"],
                         "event failed")
        self.assertContiguous(runs)
        self.assertEqual(logged_ids([srv], EVENT_RUN_RE, "on_event", len(ids) + 1), ids + [failed])
        # Suspended: refused, as Draft
        c.stop_flow(flowName="on_event")
        self.control_error(srv, ev, {}, "ConflictException")
        # not an Event flow
        msg = self.control_error(srv, "/emulator/flows/by_hand/events", {},
                                 "UnsupportedOperationException")
        self.assertIn("OnDemand", msg)
        self.control_error(srv, "/emulator/flows/by_clock/events", {},
                           "UnsupportedOperationException")
        c.start_flow(flowName="by_clock")
        self.control_error(srv, "/emulator/flows/by_clock/events", {},
                           "UnsupportedOperationException")
        # names
        self.assertEqual(self.control_error(srv, "/emulator/flows/nope/events", {},
                                            "ResourceNotFoundException"),
                         h.aws_msg_not_found("nope"))
        self.assertEqual(self.control_error(srv, "/emulator/flows/a%20b/events", {},
                                            "ValidationException"), h.aws_msg_name_pattern("a b"))
        self.control_error(srv, "/emulator/flows/" + "n" * 257 + "/events", {},
                           "ValidationException")
        self.control_error(srv, "/emulator/flows/bad%zz/events", {}, "SerializationException")
        # bodies: nothing, or any JSON object
        for body in (b"not json", b"[1]", b'"on_event"', b"42", b"{", b'{"a": 1, "a": 2}'):
            self.control_error(srv, "/emulator/flows/by_hand/events", body,
                               "SerializationException")
        # outcomes
        out = "/emulator/flows/by_hand/outcomes"
        for body in ({"outcomes": [{"executionStatus": "InProgress"}]},
                     {"outcomes": [{"executionStatus": "Canceled"}]},
                     {"outcomes": [{"executionStatus": 3}]},
                     {"outcomes": [{"durationSeconds": -1}]},
                     {"outcomes": [{"durationSeconds": "5"}]},
                     {"outcomes": [{"recordsProcessed": 1.5}]},
                     {"outcomes": [{"recordsProcessed": -1}]},
                     {"outcomes": [{"message": 7}]},
                     {"outcomes": [{"executionStatus": "Error", "mesage": "typo"}]},
                     {"outcomes": ["Error"]},
                     {"outcomes": {"executionStatus": "Error"}},
                     {"outcome": []},
                     {}):
            self.control_error(srv, out, body, "ValidationException")
        self.control_error(srv, out, b"outcomes", "SerializationException")
        self.control_error(srv, out, b"[]", "SerializationException")
        self.control_error(srv, "/emulator/flows/nope/outcomes", {"outcomes": []},
                           "ResourceNotFoundException")
        # the clock
        for body in ({}, {"advanceSeconds": -1}, {"advanceSeconds": "1"},
                     {"advanceSeconds": 1, "more": 2}, {"advanceSeconds": 1e12}):
            self.control_error(srv, "/emulator/clock", body, "ValidationException")
        self.control_error(srv, "/emulator/clock", b"{]", "SerializationException")
        # methods and paths
        self.control_error(srv, ev, None, "MethodNotAllowedException", method="GET")
        self.control_error(srv, "/emulator/clock", None, "MethodNotAllowedException",
                           method="PUT")
        self.control_error(srv, "/emulator/flows/by_hand/outcomes", None,
                           "MethodNotAllowedException", method="DELETE")
        for path in ("/emulator", "/emulator/flows", "/emulator/flows/on_event",
                     "/emulator/flows/on_event/runs", "/emulator/flows//events",
                     "/emulator/flows/a/b/events", "/emulator/clock/now", "/stop-flow"):
            self.control_error(srv, path, {}, "ResourceNotFoundException")
        # nothing of this started a run
        self.assertEqual(len(records(c, "on_event")), 4)
        self.assertEqual(records(c, "by_hand"), [])

    # ---- 7. pages of records ----

    def test_records_pages_of_scheduled_runs(self):
        """25 scheduled runs (rate(1minutes), the clock moved 25 minutes): maxResults 10 gives
        pages of 10, 10 and 5, newest first, each run once."""
        srv, c = self.server()
        c.create_flow(**scheduled("minutely", "rate(1minutes)"))
        a = self.activate(c, "minutely")
        self.assertEqual(srv.advance(1500)["runsStarted"], 25)
        pages, token = [], None
        while True:
            kw = {"nextToken": token} if token else {}
            resp = c.describe_flow_execution_records(flowName="minutely", maxResults=10, **kw)
            pages.append(resp["flowExecutions"])
            token = resp.get("nextToken")
            if not token:
                break
            self.assertLess(len(pages), 5, "a page that never ends")
        self.assertEqual([len(p) for p in pages], [10, 10, 5])
        seen = [r for p in pages for r in p]
        ids = [r["executionId"] for r in seen]
        self.assertEqual(len(set(ids)), 25, "no run twice")
        self.assertEqual(sorted(ids), sorted(logged_ids([srv], SCHEDULED_RUN_RE, "minutely", len(ids))))
        self.assertEqual([ms(r["startedAt"]) for r in seen],
                         [a + k * MINUTE for k in range(25, 0, -1)], "newest first")
        self.assertContiguous(seen)
        # a token still reads the same page after more runs were added before it
        first = c.describe_flow_execution_records(flowName="minutely", maxResults=10)
        self.assertEqual(srv.advance(120)["runsStarted"], 2)
        rest = c.describe_flow_execution_records(flowName="minutely", maxResults=10,
                                                 nextToken=first["nextToken"])
        self.assertEqual([r["executionId"] for r in rest["flowExecutions"]], ids[10:20])

    # ---- 8. the gRPC EmulatorService ----

    def test_grpc_emulator_service(self):
        """SendEvent, SetOutcomes and AdvanceClock over gRPC, with reflection's own descriptors;
        their errors' status codes and ErrorInfo reasons."""
        srv, c = self.server()
        self.assertIn(EMULATOR, Emulator.services(srv.port))
        emu = Emulator(srv.port)
        self.addCleanup(emu.close)
        c.create_flow(**h.s3_flow("grpc_event", "Event"))
        c.create_flow(**h.s3_flow("grpc_hand"))
        c.create_flow(**scheduled("grpc_clock", "rate(1hours)"))
        ERROR = emu.enum("EXECUTION_STATUS_ERROR")
        SUCCESSFUL = emu.enum("EXECUTION_STATUS_SUCCESSFUL")
        self.assertEqual((SUCCESSFUL, ERROR), (2, 3))

        def fails(method, code, reason, **fields):
            got = h.grpc_error_of(lambda: emu.call(method, **fields))
            self.assertEqual(got[0], code, got)
            self.assertEqual(got[2], reason, got)
            return got[1]

        A, N, I, F = (grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND,
                      grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
        fails("SendEvent", A, "ConflictException", flow_name="grpc_event")
        fails("SendEvent", F, "UnsupportedOperationException", flow_name="grpc_hand")
        fails("SendEvent", F, "UnsupportedOperationException", flow_name="grpc_clock")
        self.assertEqual(fails("SendEvent", N, "ResourceNotFoundException", flow_name="nope"),
                         h.aws_msg_not_found("nope"))
        fails("SendEvent", I, "ValidationException", flow_name="a b")
        fails("SendEvent", I, "ValidationException")
        fails("SetOutcomes", N, "ResourceNotFoundException", flow_name="nope", outcomes=[])
        fails("SetOutcomes", I, "ValidationException", flow_name="grpc_hand",
              outcomes=[{"execution_status": emu.enum("EXECUTION_STATUS_IN_PROGRESS")}])
        fails("SetOutcomes", I, "ValidationException", flow_name="grpc_hand",
              outcomes=[{"duration_seconds": -0.5}])
        fails("SetOutcomes", I, "ValidationException", flow_name="grpc_hand",
              outcomes=[{"records_processed": -1}])
        fails("AdvanceClock", I, "ValidationException", advance_seconds=-1)
        fails("AdvanceClock", I, "ValidationException", advance_seconds=float("nan"))

        c.start_flow(flowName="grpc_event")
        resp = emu.call("SetOutcomes", flow_name="grpc_event", outcomes=[
            {"execution_status": ERROR, "message": "over gRPC", "records_processed": 5},
            {"execution_status": SUCCESSFUL, "duration_seconds": 30, "records_processed": 9}])
        self.assertEqual(resp.pending, 2)
        first = emu.call("SendEvent", flow_name="grpc_event").execution_id
        second = emu.call("SendEvent", flow_name="grpc_event").execution_id
        self.assertNotEqual(first, second)
        r = record(c, "grpc_event", first)
        self.assertEqual((r["executionStatus"], r["executionResult"]["errorInfo"]
                          ["executionMessage"], r["executionResult"]["recordsProcessed"]),
                         ("Error", "over gRPC", 5))
        self.assertEqual(record(c, "grpc_event", second)["executionStatus"], "InProgress")
        # AdvanceClock over gRPC and over HTTP move the same clock
        a = self.activate(c, "grpc_clock")
        got = emu.call("AdvanceClock", advance_seconds=3600)
        self.assertEqual(got.runs_started, 1)
        now = got.now.seconds * 1000 + got.now.nanos // 1_000_000
        self.assertGreaterEqual(now, a + HOUR)
        r = record(c, "grpc_event", second)
        self.assertEqual((r["executionStatus"], r["executionResult"]["recordsProcessed"]),
                         ("Successful", 9))
        self.assertEqual(ms(records(c, "grpc_clock")[0]["startedAt"]), a + HOUR)
        http_now = ms(srv.advance(0)["now"])
        self.assertGreaterEqual(http_now, now)
        self.assertLess(http_now - now, 60_000)
        got = emu.call("AdvanceClock", advance_seconds=7200)
        self.assertEqual(got.runs_started, 2)
        self.assertEqual(len(records(c, "grpc_clock")), 3)
        self.assertEqual(logged_ids([srv], EVENT_RUN_RE, "grpc_event", 2), [first, second])

    def test_no_emulator_without_admin_listen(self):
        """Without --admin-listen: no admin port, the AWS door has no control routes, reflection
        does not list EmulatorService and its methods are UNIMPLEMENTED; and the scheduler runs."""
        srv, c = self.server(admin=False)
        self.assertNotIn(" admin=", srv.startup.group(0))
        self.assertIsNone(srv.admin_port)
        services = Emulator.services(srv.port)
        self.assertIn("appflow.v1.AppFlowService", services)
        self.assertNotIn(EMULATOR, services)
        reply = h.aws_request(srv.http_port, {"advanceSeconds": 60}, path="/emulator/clock")
        self.assertEqual((reply.status, reply.error_type), (404, "UnknownOperationException"))
        reply = h.aws_request(srv.http_port, {}, path="/emulator/flows/x1/events")
        self.assertEqual(reply.status, 404)
        chan = h.channel(srv.port)
        self.addCleanup(chan.close)
        for method, body in (("SendEvent", h.encode_flow_name(b"x1")),
                             ("AdvanceClock", b"\x09" + b"\x00" * 7 + b"\x40"),
                             ("SetOutcomes", h.encode_flow_name(b"x1"))):
            call = chan.unary_unary(f"/{EMULATOR}/{method}", request_serializer=h.identity,
                                    response_deserializer=h.identity)
            with self.assertRaises(grpc.RpcError) as cm:
                call(body, timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED, method)
        # the emulator's clock is the real one, and AppFlow's own operations are unchanged
        c.create_flow(**h.s3_flow("plain"))
        run_id = c.start_flow(flowName="plain")["executionId"]
        r = record(c, "plain", run_id)
        self.assertEqual(r["executionStatus"], "Successful")
        self.assertLess(abs(ms(r["startedAt"]) - ms(time.time())), 60_000)

    # ---- 9. a crash and a restart (sqlite) ----

    @unittest.skipUnless(h.E2E_STORE == "memory", "starts its own servers on sqlite: once")
    def test_restart_after_a_crash_on_sqlite(self):
        """kill -9 with a run in progress: the next appflowd on the file ends it as Error,
        interrupted; the clock's offset and the schedules survive, and keep firing."""
        url = h.new_store_url("sqlite")
        first = h.start_http_server(None, "--store", url, *ADMIN)
        self.addCleanup(first.stop)
        c = self.client(first)
        c.create_flow(**h.s3_flow("crashed"))
        c.create_flow(**scheduled("ticking", "rate(5minutes)"))
        a = self.activate(c, "ticking")
        before = first.advance(600)
        self.assertEqual(before["runsStarted"], 2, before)
        self.outcomes(first, "crashed", {"durationSeconds": 600, "recordsProcessed": 10})
        run_id = c.start_flow(flowName="crashed")["executionId"]
        r = record(c, "crashed", run_id)
        self.assertEqual(r["executionStatus"], "InProgress")
        started = ms(r["startedAt"])
        self.assertGreaterEqual(started, ms(before["now"]), "timestamps follow the moved clock")
        self.assertEqual(first.stop(signal.SIGKILL), -signal.SIGKILL)

        second = self.start_http(None, "--store", url, *ADMIN)
        second.wait_for_line(re.compile(
            r"^appflowd: info: restart: 1 run\(s\) left in progress ended as interrupted$"))
        second.wait_for_line(re.compile(
            r"^appflowd: info: flow crashed: 1 run\(s\) interrupted by the restart$"))
        c = self.client(second)
        r = record(c, "crashed", run_id)
        self.assertEqual(r["executionStatus"], "Error")
        self.assertIn("interrupted", r["executionResult"]["errorInfo"]["executionMessage"])
        self.assertEqual(r["executionResult"]["recordsProcessed"], 0)
        self.assertGreaterEqual(ms(r["lastUpdatedAt"]), started)
        self.assertLess(ms(r["lastUpdatedAt"]), started + 600_000)
        self.assertEqual(c.describe_flow(flowName="crashed")["lastRunExecutionDetails"]
                         ["mostRecentExecutionStatus"], "Error")
        # the clock went on from where it was (not back to the real time, 10 minutes behind)
        now = ms(second.advance(0)["now"])
        self.assertGreaterEqual(now, ms(before["now"]))
        self.assertLess(now - ms(before["now"]), 120_000)
        # the schedule keeps its grid
        out = second.advance(300)
        self.assertEqual(out["runsStarted"], 1, out)
        runs = records(c, "ticking")
        self.assertEqual([ms(x["startedAt"]) for x in runs],
                         [a + k * 5 * MINUTE for k in (3, 2, 1)])
        self.assertContiguous(runs)
        self.assertEqual(c.describe_flow(flowName="ticking")["flowStatus"], "Active")
        # a later run of the crashed flow is a new one, Successful (the outcome was used)
        nxt = c.start_flow(flowName="crashed")["executionId"]
        self.assertEqual(record(c, "crashed", nxt)["executionStatus"], "Successful")

    # ---- 10. two replicas (PostgreSQL) ----

    @unittest.skipUnless(h.E2E_STORE == "memory", "starts its own servers on PostgreSQL: once")
    def test_replicas_fire_each_scheduled_run_once(self):
        """Two replicas on one PostgreSQL store: the clock moved through one while the other
        keeps running passes, each scheduled run starts exactly once; SIGKILL the first, and the
        other fires the following runs, once each."""
        h.pg_cluster()
        url = h.new_store_url("postgresql")
        a_srv = h.start_http_server(None, "--store", url, *ADMIN)
        self.addCleanup(a_srv.stop)
        b_srv = self.start_http(None, "--store", url, *ADMIN)
        ca, cb = self.client(a_srv), self.client(b_srv)
        ca.create_flow(**scheduled("shared", "rate(5minutes)"))
        act = self.activate(ca, "shared")
        self.assertEqual(ms(cb.describe_flow(flowName="shared")["lastUpdatedAt"]), act)

        # a replica learns of a clock move made through the other on its own, within a second
        # (its scheduler reads the stored clock on every tick): B's 100 s run ends once A has
        # moved the clock 120 s (grid unchanged: the next scheduled run is at 300 s)
        ca.create_flow(**h.s3_flow("slow"))
        self.outcomes(a_srv, "slow", {"durationSeconds": 100})
        slow = cb.start_flow(flowName="slow")["executionId"]
        self.assertEqual(record(cb, "slow", slow)["executionStatus"], "InProgress")
        self.assertEqual(a_srv.advance(120)["runsStarted"], 0)
        wait_for_record(cb, "slow", slow, ("Successful",), timeout=10)

        stop = threading.Event()
        b_answers, b_errors = [], []

        def passes_on_b():
            while not stop.is_set():
                try:
                    b_answers.append(b_srv.advance(0))
                except BaseException as e:  # reported below
                    b_errors.append(e)
                    return

        t = threading.Thread(target=passes_on_b, daemon=True)
        t.start()
        steps = 12
        try:
            a_answers = [a_srv.advance(300) for _ in range(steps)]
        finally:
            stop.set()
            t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(b_errors, [])
        self.assertGreater(len(b_answers), 0)
        # settle: both have seen the last move and run what was due
        a_srv.advance(0)
        b_srv.advance(0)
        runs = records(cb, "shared")
        starts = [ms(r["startedAt"]) for r in runs]
        self.assertEqual(starts, [act + k * 5 * MINUTE for k in range(steps, 0, -1)])
        self.assertEqual(len(set(starts)), steps, "one run per instant")
        ids = [r["executionId"] for r in runs]
        self.assertEqual(len(set(ids)), steps)
        self.assertEqual([r["executionId"] for r in records(ca, "shared")], ids)
        self.assertContiguous(runs)
        started = sum(x["runsStarted"] for x in a_answers + b_answers)
        self.assertLessEqual(started, steps)
        # each run logged once, by whichever replica started it
        h.wait_until(lambda: set(logged_ids([a_srv, b_srv], SCHEDULED_RUN_RE, "shared"))
                     >= set(ids), timeout=h.LOG_TIMEOUT, interval=0.05,
                     what="every run to be logged")
        counts = collections.Counter(logged_ids([a_srv, b_srv], SCHEDULED_RUN_RE, "shared"))
        self.assertEqual(counts, collections.Counter(ids), "each run started (logged) once")

        self.assertEqual(a_srv.stop(signal.SIGKILL), -signal.SIGKILL)
        for _ in range(3):
            out = b_srv.advance(300)
            self.assertEqual(out["runsStarted"], 1, out)
        runs = records(cb, "shared")
        starts = [ms(r["startedAt"]) for r in runs]
        self.assertEqual(starts, [act + k * 5 * MINUTE for k in range(steps + 3, 0, -1)])
        self.assertEqual(len({r["executionId"] for r in runs}), steps + 3)
        self.assertContiguous(runs)
        self.assertEqual(cb.describe_flow(flowName="shared")["flowStatus"], "Active")


if __name__ == "__main__":
    unittest.main()
