"""ListFlows pagination on both doors (boto3 on the AWS door, grpcio stubs on gRPC) over 250
flows created through either door: with maxResults 1, 7, 100 and the default, every flow comes
exactly once, every page but the last is full and only the last lacks nextToken. Then while
threads keep creating and deleting other flows through both doors, clients paging with a small
maxResults never see a flow twice and miss none that existed throughout (flows created or
deleted meanwhile may or may not appear). A token also stays valid after the flow its page
ended on is deleted."""

import math
import os
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from google.protobuf import json_format  # noqa: E402

h.isolate_boto3_env()
S = h.stubs()
pb = S.appflow_pb2

NFLOWS = 250


def grpc_create(stub, name, kind="OnDemand"):
    req = json_format.ParseDict(h.to_proto_json(h.s3_flow(name, kind)), pb.CreateFlowRequest())
    return stub.CreateFlow(req, timeout=10)


def aws_create(client, name, kind="OnDemand"):
    return client.create_flow(**h.s3_flow(name, kind))


def grpc_delete(stub, name):
    stub.DeleteFlow(pb.DeleteFlowRequest(flow_name=name, force_delete=True), timeout=10)


def aws_delete(client, name):
    client.delete_flow(flowName=name, forceDelete=True)


class Doors:
    """A gRPC stub and a boto3 client on one server, for one thread."""

    def __init__(self, server):
        self.channel = h.channel(server.port)
        self.stub = S.appflow_pb2_grpc.AppFlowServiceStub(self.channel)
        self.aws = h.boto3_appflow(server.http_port)

    def create(self, name, i):
        """Creates flow name through the gRPC door for even i, the AWS door for odd i."""
        kind = ("OnDemand", "Scheduled", "Event")[i % 3]
        if i % 2:
            aws_create(self.aws, name, kind)
        else:
            grpc_create(self.stub, name, kind)

    def delete(self, name, i):
        if i % 2:
            aws_delete(self.aws, name)
        else:
            grpc_delete(self.stub, name)

    def close(self):
        self.aws.close()
        self.channel.close()


def create_all(server, names, nthreads=4):
    """Creates names through both doors from nthreads threads."""
    def work(t):
        doors = Doors(server)
        try:
            for i in range(t, len(names), nthreads):
                doors.create(names[i], i)
        finally:
            doors.close()

    errors = h.run_threads(nthreads, work)
    if errors:
        raise AssertionError(f"creating flows failed: {errors}")


def aws_pages(client, max_results=None, token=None, after_page=None):
    """Every page from token on through the AWS door: [(names, nextToken or None)]."""
    pages = []
    while True:
        kwargs = {} if max_results is None else {"maxResults": max_results}
        if token:
            kwargs["nextToken"] = token
        resp = client.list_flows(**kwargs)
        token = resp.get("nextToken")
        pages.append(([f["flowName"] for f in resp.get("flows", [])], token))
        if after_page:
            after_page()
        if not token:
            return pages
        if len(pages) > 10 * NFLOWS:
            raise AssertionError("ListFlows never ends")


def grpc_pages(stub, max_results=None, token=None, after_page=None):
    """Every page from token on through the gRPC door: [(names, next_token or None)];
    max_results None leaves it unset (the default page)."""
    pages = []
    while True:
        req = pb.ListFlowsRequest()
        if max_results is not None:
            req.max_results = max_results
        if token:
            req.next_token = token
        resp = stub.ListFlows(req, timeout=10)
        token = resp.next_token
        pages.append(([f.flow_name for f in resp.flows], token or None))
        if after_page:
            after_page()
        if not token:
            return pages
        if len(pages) > 10 * NFLOWS:
            raise AssertionError("ListFlows never ends")


def names_of(pages):
    return [n for names, _ in pages for n in names]


class PaginationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.start_http_server(None)
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.names = [f"flow_{i:03d}" for i in range(NFLOWS)]
        create_all(cls.server, cls.names)
        cls.doors = Doors(cls.server)
        cls.addClassCleanup(cls.doors.close)

    def assertPages(self, pages, size, expected):
        """Every flow of expected exactly once; every page but the last holds size flows, and
        only the last page lacks a token."""
        names = names_of(pages)
        self.assertEqual(len(names), len(set(names)), "a flow listed twice")
        self.assertEqual(set(names), set(expected))
        self.assertEqual(len(pages), max(1, math.ceil(len(expected) / size)))
        for names_, token in pages[:-1]:
            self.assertEqual(len(names_), size)
            self.assertTrue(token)
        self.assertIsNone(pages[-1][1], "no nextToken on the last page")

    def test_every_flow_once_aws(self):
        for size in (1, 7, 100, None):
            with self.subTest(maxResults=size):
                self.assertPages(aws_pages(self.doors.aws, size), size or 100, self.names)

    def test_every_flow_once_grpc(self):
        for size in (1, 7, 100, None):
            with self.subTest(max_results=size):
                self.assertPages(grpc_pages(self.doors.stub, size), size or 100, self.names)

    def test_the_same_order_on_both_doors(self):
        self.assertEqual(names_of(aws_pages(self.doors.aws, 13)),
                         names_of(grpc_pages(self.doors.stub, 13)))
        # a token from one door continues on the other
        first = self.doors.aws.list_flows(maxResults=10)
        rest = grpc_pages(self.doors.stub, 100, first["nextToken"])
        names = [f["flowName"] for f in first["flows"]] + names_of(rest)
        self.assertEqual(sorted(names), sorted(self.names))

    def test_token_can_be_used_again(self):
        first = self.doors.aws.list_flows(maxResults=7)
        a = self.doors.aws.list_flows(maxResults=7, nextToken=first["nextToken"])
        b = self.doors.aws.list_flows(maxResults=7, nextToken=first["nextToken"])
        self.assertEqual([f["flowName"] for f in a["flows"]], [f["flowName"] for f in b["flows"]])
        self.assertEqual(a.get("nextToken"), b.get("nextToken"))

    def test_token_survives_deleting_the_flow_it_ended_on(self):
        first = self.doors.aws.list_flows(maxResults=5)
        seen = [f["flowName"] for f in first["flows"]]
        last = seen[-1]
        grpc_delete(self.doors.stub, last)
        self.addCleanup(grpc_create, self.doors.stub, last)
        for door in ("aws", "grpc"):
            with self.subTest(door=door):
                if door == "aws":
                    rest = names_of(aws_pages(self.doors.aws, 5, first["nextToken"]))
                else:
                    rest = names_of(grpc_pages(self.doors.stub, 5, first["nextToken"]))
                self.assertEqual(len(rest), len(set(rest)))
                self.assertFalse(set(rest) & set(seen), "the first page again")
                self.assertEqual(set(rest) | set(seen), set(self.names))
                self.assertNotIn(last, rest)


class ConcurrentListingTest(unittest.TestCase):
    """Two churn threads (one per door) create and delete flows while two listers (one per
    door) page through; each lister waits for some churn after each page, so every page
    boundary sees the table change."""

    def test_no_flow_twice_none_missed(self):
        server = h.start_http_server(None, http_threads=4, threads=2)
        self.addCleanup(server.check_stopped_cleanly)
        stable = [f"stable_{i:03d}" for i in range(NFLOWS)]
        doomed = [f"doomed_{i:03d}" for i in range(60)]  # deleted during the listing
        create_all(server, stable + doomed)

        lock = threading.Condition()
        state = {"ops": 0, "created": set(), "deleted": set(), "stop": False, "errors": []}

        def churn(door):
            doors = Doors(server)
            i = 0
            try:
                while not state["stop"]:
                    name = f"churn_{door}_{i:04d}"
                    doors.create(name, door)
                    with lock:
                        state["created"].add(name)
                    if i >= 3:
                        doors.delete(f"churn_{door}_{i - 3:04d}", door)
                    doomed_name = doomed[door::2][i] if i < len(doomed) // 2 else None
                    if doomed_name:
                        doors.delete(doomed_name, door + 1)  # through the other door
                        with lock:
                            state["deleted"].add(doomed_name)
                    i += 1
                    with lock:
                        state["ops"] += 1
                        lock.notify_all()
            except Exception as e:  # reported below
                state["errors"].append((door, e))
                with lock:
                    lock.notify_all()
            finally:
                doors.close()

        def wait_for_churn(since):
            """Until the churn threads have done at least one more round than since."""
            with lock:
                ok = lock.wait_for(lambda: state["ops"] > since or state["errors"], timeout=20)
            if not ok:
                raise AssertionError("the churn threads made no progress")
            return state["ops"]

        results = {}

        def lister(door):
            doors = Doors(server)
            try:
                mark = [wait_for_churn(0)]

                def after_page():
                    mark[0] = wait_for_churn(mark[0])

                if door == "aws":
                    results[door] = aws_pages(doors.aws, 3, after_page=after_page)
                else:
                    results[door] = grpc_pages(doors.stub, 4, after_page=after_page)
            finally:
                doors.close()

        churners = [threading.Thread(target=churn, args=(d,), daemon=True) for d in (0, 1)]
        for t in churners:
            t.start()
        try:
            errors = h.run_threads(2, lambda i: lister(("aws", "grpc")[i]))
        finally:
            state["stop"] = True
            for t in churners:
                t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(state["errors"], [])
        self.assertFalse(any(t.is_alive() for t in churners))
        self.assertGreater(state["ops"], 100, "churn overlapped the listing")
        known = set(stable) | set(doomed) | state["created"]
        for door, pages in results.items():
            with self.subTest(door=door):
                names = names_of(pages)
                dup = {n for n in names if names.count(n) > 1}
                self.assertFalse(dup, f"listed twice: {sorted(dup)[:10]}")
                missed = set(stable) - set(names)
                self.assertFalse(missed, f"missed: {sorted(missed)[:10]}")
                self.assertLessEqual(set(names), known, "a flow that never existed")
                self.assertGreater(len(pages), NFLOWS // 4)
        # the churn really deleted what it meant to
        doors = Doors(server)
        self.addCleanup(doors.close)
        final = set(names_of(aws_pages(doors.aws, 100)))
        self.assertLessEqual(set(stable), final)
        self.assertTrue(state["deleted"])
        self.assertFalse(final & state["deleted"], "deleted flows are gone")


class LargestPageTest(unittest.TestCase):
    """A full page of the largest flows the model allows (256-character names, 2048-character
    descriptions, 50 tags of 128/256 characters) is answered on both doors, not refused for
    memory (the AWS door's JSON for it is over 2 MB)."""

    def test_largest_page(self):
        server = h.start_http_server(None)
        self.addCleanup(server.check_stopped_cleanly)
        doors = Doors(server)
        self.addCleanup(doors.close)
        tags = {f"k{i:03d}" + "a" * 124: "v" * 256 for i in range(50)}
        for i in range(100):
            flow = h.s3_flow(f"n{i:03d}" + "x" * 252, "OnDemand")
            flow.update(description="d" * 2048, tags=tags)
            doors.aws.create_flow(**flow)
        page = doors.aws.list_flows(maxResults=100)
        self.assertEqual(len(page["flows"]), 100)
        self.assertNotIn("nextToken", page)
        self.assertTrue(all(f["tags"] == tags for f in page["flows"]))
        resp = doors.stub.ListFlows(pb.ListFlowsRequest(max_results=100), timeout=10)
        self.assertEqual(len(resp.flows), 100)
        self.assertEqual(len(resp.flows[0].tags), 50)


class EntriesFollowChangesTest(unittest.TestCase):
    """A page lists each flow as it is now, and DescribeFlow describes it as it is now, on both
    doors, however often they answered before a change (the server keeps those answers until
    their flow changes): after a tag, an update, a stop, an activation and a run, every entry
    says what DescribeFlow says, and both say what changed."""

    def entries(self, doors):
        """{name: (status, description, tags, last run status or None)} from each door."""
        aws = {f["flowName"]: (f["flowStatus"], f.get("description"), f.get("tags", {}),
                               f.get("lastRunExecutionDetails", {}).get(
                                   "mostRecentExecutionStatus"))
               for f in doors.aws.list_flows(maxResults=100)["flows"]}
        resp = doors.stub.ListFlows(pb.ListFlowsRequest(max_results=100), timeout=10)
        grpc = {f.flow_name: (f.flow_status, f.description if f.HasField("description") else None,
                              dict(f.tags), f.last_run_execution_details.most_recent_execution_status
                              if f.HasField("last_run_execution_details") else None)
                for f in resp.flows}
        return aws, grpc

    def described(self, doors, name):
        d = doors.aws.describe_flow(flowName=name)
        return (d["flowStatus"], d.get("description"), d.get("tags", {}),
                d.get("lastRunExecutionDetails", {}).get("mostRecentExecutionStatus"))

    def test_entries_follow_changes(self):
        server = h.start_http_server(None, "--run-duration", "0")
        self.addCleanup(server.check_stopped_cleanly)
        doors = Doors(server)
        self.addCleanup(doors.close)
        doors.aws.create_flow(**h.s3_flow("od", "OnDemand", description="first"))
        doors.aws.create_flow(**h.s3_flow("ev", "Event"))
        grpc_create(doors.stub, "sch", "Scheduled")
        doors.stub.StartFlow(pb.StartFlowRequest(flow_name="sch"), timeout=10)  # activated
        for _ in range(2):  # listed and described twice on each door before anything changes
            aws, grpc = self.entries(doors)
            for name in ("od", "ev", "sch"):
                self.described(doors, name)
                doors.stub.DescribeFlow(pb.DescribeFlowRequest(flow_name=name), timeout=10)
        self.assertEqual(aws["od"], ("Active", "first", {}, None))
        self.assertEqual(aws["ev"][0], "Draft")
        self.assertEqual(aws["sch"][0], "Active")
        arn = doors.aws.describe_flow(flowName="od")["flowArn"]
        doors.aws.tag_resource(resourceArn=arn, tags={"team": "data"})
        doors.aws.start_flow(flowName="od")
        doors.aws.update_flow(**{k: v for k, v in h.s3_flow("ev", "Event",
                                                             description="second").items()
                                 if k != "tags"})
        doors.stub.StartFlow(pb.StartFlowRequest(flow_name="ev"), timeout=10)
        doors.aws.stop_flow(flowName="sch")
        aws, grpc = self.entries(doors)
        for name in ("od", "ev", "sch"):
            want = self.described(doors, name)
            self.assertEqual(aws[name], want, name)
            status, description, tags, run = grpc[name]
            self.assertEqual((h.aws_enum(pb.FlowStatus, status), description, tags,
                              run and h.aws_enum(pb.ExecutionStatus, run)), want, name)
        self.assertEqual(aws["od"], ("Active", "first", {"team": "data"}, "Successful"))
        self.assertEqual(aws["ev"][:2], ("Active", "second"))
        self.assertEqual(aws["sch"][0], "Suspended")
        self.assertEqual(self.described(doors, "od"), aws["od"])  # DescribeFlow follows too
        d = doors.stub.DescribeFlow(pb.DescribeFlowRequest(flow_name="ev"), timeout=10)
        self.assertEqual((h.aws_enum(pb.FlowStatus, d.flow_status), d.description),
                         ("Active", "second"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
