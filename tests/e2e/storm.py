"""Mutation storms for the durability and replica tests: clients on both doors of one or more
servers change flows as fast as they can while a model records what each acknowledged reply
said the flow became; after a crash, what a server reads back must be each flow's acknowledged
state, or that state with the one change in flight when the crash came applied whole.

  GrpcDoor(port) / HttpDoor(port)    one client on one door (same methods, same results)
  FlowModel                          a flow's acknowledged state and its change in flight
  Storm(doors, names, ...)           threads that each own some flows and change them
  verify(door, models)               [problems] comparing a server's flows with the models
"""

import http.client
import os
import random
import sys
import threading
import urllib.parse

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2


class Down(Exception):
    """The server did not answer (it died, or is unavailable): the change's outcome is unknown."""


class Result:
    """A reply: ok, or the AWS error type; status (AWS spelling) and execution_id when given."""

    def __init__(self, error=None, status=None, execution_id=None, message=""):
        self.error = error
        self.status = status
        self.execution_id = execution_id
        self.message = message

    @property
    def ok(self):
        return self.error is None

    def __repr__(self):
        return f"Result(error={self.error!r}, status={self.status!r}, message={self.message!r})"


AWS_STATUS = {pb.FLOW_STATUS_ACTIVE: "Active", pb.FLOW_STATUS_DRAFT: "Draft",
              pb.FLOW_STATUS_SUSPENDED: "Suspended", pb.FLOW_STATUS_ERRORED: "Errored",
              pb.FLOW_STATUS_DEPRECATED: "Deprecated"}
# A server that is down or overloaded answers these; anything else is an answer about the flow.
UNAVAILABLE_TYPES = ("ServiceUnavailableException", "ThrottlingException")


def create_members(name, kind, tags, token=None):
    members = h.s3_flow(name, kind, tags=tags)
    if kind == "Scheduled":
        members["triggerConfig"] = h.trigger("Scheduled", "rate(1hours)")
    if token:
        members["clientToken"] = token
    return members


class GrpcDoor:
    def __init__(self, port, timeout=10):
        self.name = f"grpc:{port}"
        self.chan = h.channel(port)
        self.stub = S.appflow_pb2_grpc.AppFlowServiceStub(self.chan)
        self.timeout = timeout

    def close(self):
        self.chan.close()

    def _call(self, method, req, pick):
        try:
            resp = getattr(self.stub, method)(req, timeout=self.timeout)
        except grpc.RpcError as e:
            code, details, reason, _ = h.error_parts(e)
            if reason is None or reason in UNAVAILABLE_TYPES:
                raise Down(f"{self.name} {method}: {code} {details}") from None
            return Result(reason, message=details)
        return pick(resp)

    @staticmethod
    def _status(resp):
        return Result(status=AWS_STATUS.get(resp.flow_status),
                      execution_id=getattr(resp, "execution_id", "") or None)

    def create(self, name, kind, tags, token=None):
        from google.protobuf import json_format
        req = json_format.ParseDict(h.to_proto_json(create_members(name, kind, tags, token)),
                                    pb.CreateFlowRequest())
        return self._call("CreateFlow", req, self._status)

    def start(self, name, token=None):
        req = pb.StartFlowRequest(flow_name=name)
        if token:  # proto2 presence: an empty clientToken would be a present, invalid value
            req.client_token = token
        return self._call("StartFlow", req, self._status)

    def stop(self, name):
        return self._call("StopFlow", pb.StopFlowRequest(flow_name=name), self._status)

    def tag(self, name, tags):
        return self._call("TagResource", pb.TagResourceRequest(resource_arn=h.arn(name), tags=tags),
                          lambda r: Result())

    def delete(self, name, force=True):
        return self._call("DeleteFlow", pb.DeleteFlowRequest(flow_name=name, force_delete=force),
                          lambda r: Result())

    def describe(self, name):
        """(AWS status, tags dict), or None when the flow does not exist."""
        r = {}

        def pick(resp):
            r["v"] = (AWS_STATUS.get(resp.flow_status), dict(resp.tags))
            return Result()

        res = self._call("DescribeFlow", pb.DescribeFlowRequest(flow_name=name), pick)
        if res.error == "ResourceNotFoundException":
            return None
        if not res.ok:
            raise AssertionError(f"DescribeFlow {name}: {res}")
        return r["v"]


class HttpDoor:
    def __init__(self, port, timeout=10):
        self.name = f"http:{port}"
        self.port = port
        self.timeout = timeout
        self.conn = h.http_connection(port, timeout)

    def close(self):
        self.conn.close()

    def _call(self, body, path, method="POST"):
        try:
            r = h.aws_request(self.port, body, method=method, path=path, conn=self.conn,
                              timeout=self.timeout)
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = h.http_connection(self.port, self.timeout)
            raise Down(f"{self.name} {path}: {e!r}") from None
        if r.status == 200:
            return r
        if r.error_type in UNAVAILABLE_TYPES or r.error_type is None:
            raise Down(f"{self.name} {path}: {r.status} {r.error_type}")
        return Result(r.error_type, message=r.message)

    def _status(self, body, path):
        r = self._call(body, path)
        if isinstance(r, Result):
            return r
        j = r.json()
        return Result(status=j.get("flowStatus"), execution_id=j.get("executionId"))

    def create(self, name, kind, tags, token=None):
        return self._status(create_members(name, kind, tags, token), "/create-flow")

    def start(self, name, token=None):
        body = {"flowName": name}
        if token:
            body["clientToken"] = token
        return self._status(body, "/start-flow")

    def stop(self, name):
        return self._status({"flowName": name}, "/stop-flow")

    def tag(self, name, tags):
        r = self._call({"tags": tags}, "/tags/" + urllib.parse.quote(h.arn(name), safe=""))
        return r if isinstance(r, Result) else Result()

    def delete(self, name, force=True):
        r = self._call({"flowName": name, "forceDelete": force}, "/delete-flow")
        return r if isinstance(r, Result) else Result()

    def describe(self, name):
        r = self._call({"flowName": name}, "/describe-flow")
        if isinstance(r, Result):
            if r.error == "ResourceNotFoundException":
                return None
            raise AssertionError(f"DescribeFlow {name}: {r}")
        j = r.json()
        return j["flowStatus"], j.get("tags", {})


class FlowModel:
    """What the acknowledged replies say a flow is (None: it does not exist), and the one change
    in flight, as the state it would leave."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self.state = None  # (status, frozenset of tag items) once created
        self.in_flight = None  # ("op", state after) while a call is out
        self.acked = 0

    def allowed(self):
        out = [self.state]
        if self.in_flight is not None:
            out.append(self.in_flight[1])
        return out


def _tags_state(tags):
    return frozenset(tags.items())


class Storm:
    """Threads (one per door, each owning flows_per_door flows) that create, start, stop, tag
    and delete their flows until stopped or until their door is down. Each thread changes one
    flow at a time, so a crash leaves at most one change in flight per flow."""

    def __init__(self, doors, prefix, flows_per_door=12, seed=None):
        self.rng_seed = seed if seed is not None else random.randrange(1 << 30)
        self.doors = doors
        self.models = []
        self.threads = []
        self.stop_event = threading.Event()
        self.acked = 0
        self.problems = []
        self._lock = threading.Lock()
        self._acked_cond = threading.Condition(self._lock)
        for d, door in enumerate(doors):
            mine = [FlowModel(f"{prefix}_{d}_{i}", "Scheduled" if i % 3 else "OnDemand")
                    for i in range(flows_per_door)]
            self.models += mine
            t = threading.Thread(target=self._run, args=(door, mine, self.rng_seed + d),
                                 daemon=True)
            self.threads.append(t)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait_acked(self, n, timeout=60):
        """Waits until n changes in all were acknowledged (an event, not a sleep)."""
        with self._acked_cond:
            if not self._acked_cond.wait_for(lambda: self.acked >= n or self.problems, timeout):
                raise AssertionError(f"only {self.acked} of {n} changes acknowledged in {timeout}s")

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)

    def _next_change(self, m, rng, n):
        """(op name, callable(door), state after) for model m's next change."""
        if m.state is None:
            tags = {"gen": str(n)}
            st = ("Active" if m.kind == "OnDemand" else "Draft", _tags_state(tags))
            return "create", (lambda door: door.create(m.name, m.kind, tags)), st
        status, tags = m.state
        choice = rng.random()
        if choice < 0.1:
            return "delete", (lambda door: door.delete(m.name)), None
        if choice < 0.35:
            both = {"a": str(n), "b": str(n)}  # two tags at once: both or neither, never half
            return "tag", (lambda door: door.tag(m.name, both)), (status,
                                                                  _tags_state({**dict(tags), **both}))
        if m.kind == "Scheduled" and status == "Active":
            return "stop", (lambda door: door.stop(m.name)), ("Suspended", tags)
        return "start", (lambda door: door.start(m.name)), ("Active", tags)

    def _run(self, door, models, seed):
        rng = random.Random(seed)
        n = 0
        while not self.stop_event.is_set():
            m = models[rng.randrange(len(models))]
            n += 1
            op, call, after = self._next_change(m, rng, n)
            m.in_flight = (op, after)
            try:
                r = call(door)
            except Down:
                return  # m.in_flight stays: its outcome is unknown
            if not r.ok:
                with self._lock:
                    self.problems.append(f"{door.name} {op} {m.name}: {r}")
                    self._acked_cond.notify_all()
                return
            m.state = after
            m.in_flight = None
            m.acked += 1
            with self._acked_cond:
                self.acked += 1
                self._acked_cond.notify_all()


def verify(door, models):
    """Problems found comparing what door's server reads back with each model."""
    problems = []
    for m in models:
        got = door.describe(m.name)
        state = None if got is None else (got[0], _tags_state(got[1]))
        if state not in m.allowed():
            problems.append(f"{m.name}: read back {state}, acknowledged {m.state}, "
                            f"in flight {m.in_flight}")
        tags = dict(state[1]) if state else {}
        if tags.get("a") != tags.get("b"):
            problems.append(f"{m.name}: a TagResource half applied: {tags}")
    return problems
