"""`make bench` (python -m bench): every figure of docs/benchmarks.md in one run.

1. Throughput, no cluster: the gateway, a bare Flask forwarder making the same outbound
   POST, and a bare Flask hello, in turn, each under gunicorn 1 worker x 4 threads, loaded
   by wrk (2 threads x 8 connections x 10 s) on loopback; the receiver is a sink that answers
   202 at once. Rounds alternate the apps, and ratios are taken within a round.
2. Cold start (process start to the first 200) and RSS after 1,000 requests, per function.
3. `make dev` (the real Knative Eventing, the functions as their own ServiceAccounts):
   GET /stores at 1, 500 and 5,000 stores (synthetic: made straight in the API), with the
   API calls it makes; creates through the gateway and the real Broker, with real helm in
   runner Jobs, at 1, 10 and 50 at once; the API server's request rate meanwhile.

Prints the table (Markdown) at the end; --out also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from cloudevents.core.bindings.http import to_binary_event
from kubernetes import client
from kubernetes import config as kube_config

from bench import apiserver, load, provisioning, servers, synthetic
from bench.report import Report, ms, ratio
from storeplatform import contract, kube
from storeplatform.events import new_event
from storeplatform.lifecycle import cluster as store_cluster

NS = contract.PLATFORM_NAMESPACE
FUNCTIONS = ("create-store", "delete-store", "list-stores")
SERVICE_ACCOUNTS = [f"storeplatform-{fn}" for fn in FUNCTIONS]
APPS = {"gateway": "storeplatform.gateway:create_app()",
        "create-store": "storeplatform.create_store:create_app()",
        "delete-store": "storeplatform.delete_store:create_app()",
        "list-stores": "storeplatform.list_stores:create_app()"}
CREATE_BODY = b'{"engine": "woocommerce"}'
JSON = {"Content-Type": "application/json"}
# The bench's own gateways and functions: open (no token, no sender checks), and no cap or
# limit in the way of its thousands of requests. `make dev`'s keep theirs, but for the cap.
UNLIMITED = {"MAX_STORES": "1000000", "RATE_LIMIT": "1000000/second"}
OPEN_GATEWAY = UNLIMITED | {"GATEWAY_AUTH": "none", "GATEWAY_TOKEN": ""}
DIRECT = {"EVENT_AUTH": "none"}


def event(event_type: str, data: dict, subject: str | None = None) -> tuple[dict, bytes]:
    message = to_binary_event(new_event(event_type, "/bench", subject, data))
    return dict(message.headers), message.body


# ------------------------------------------------------------------ 1. throughput

def throughput(report: Report, sink: str, logs: Path, rounds: int) -> None:
    print("throughput (wrk -t2 -c8 -d10s, gunicorn 1 worker x 4 threads)", flush=True)
    contenders = {
        "hello": ("bench.apps:hello()", {}, "/", False),
        "forwarder": ("bench.apps:forwarder()", {"SINK_URL": sink}, "/stores/store-bench",
                      True),
        "kept-alive forwarder": ("bench.apps:forwarder(pooled=True)", {"SINK_URL": sink},
                                 "/stores/store-bench", True),
        "one-POST forwarder": ("bench.apps:forwarder(pooled=True, listing=False)",
                               {"SINK_URL": sink}, "/stores/store-bench", True),
        "gateway": (APPS["gateway"], OPEN_GATEWAY | {"K_SINK": sink, "LIST_URL": sink},
                    "/stores/store-bench", True),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    errors = 0
    for _ in range(rounds):
        for name, (app, env, path, post) in contenders.items():
            server = servers.start(name.replace(" ", "-"), app, env, logs)
            try:
                server.wait_for()
                load.wrk(server.url + path, post, "2s")  # warm-up
                result = load.wrk(server.url + path, post)
            finally:
                server.stop()
            rates[name].append(result.requests_per_s)
            errors += result.errors

    def per_round(other: str) -> float:
        return load.median([g / o for g, o in zip(rates["gateway"], rates[other],
                                                  strict=True)])

    def rate(name: str) -> str:
        return f"{load.median(rates[name]):.0f}"

    vs_forwarder, vs_pooled, vs_hello = (per_round(n) for n in
                                         ("forwarder", "kept-alive forwarder", "hello"))
    report.add("gateway `POST /stores/{name}` vs a bare Flask app making the same outbound "
               "POSTs (the store cap's list, the event; new connections, urllib)",
               f"{ratio(vs_forwarder)} ({rate('gateway')} vs {rate('forwarder')} req/s)",
               "≥ 1.0x", vs_forwarder >= 1.0)
    report.add("gateway vs the same bare app keeping its connection (the best a forwarder "
               "does)", f"{ratio(vs_pooled)} ({rate('kept-alive forwarder')} req/s)")
    report.add("gateway vs a bare Flask \"hello\"",
               f"{ratio(vs_hello)} ({rate('hello')} req/s)", "≥ 0.6x", vs_hello >= 0.6)
    def between(a: str, b: str) -> str:
        return ratio(load.median([x / y for x, y in zip(rates[a], rates[b], strict=True)]))

    report.add("bare kept-alive forwarder vs bare hello (what the outbound POSTs cost)",
               between("kept-alive forwarder", "hello"))
    report.add("bare kept-alive forwarder with the store cap's list vs without it (one POST)",
               f"{between('kept-alive forwarder', 'one-POST forwarder')} "
               f"({rate('one-POST forwarder')} req/s without)")
    if errors:
        report.note(f"wrk saw {errors} non-2xx answers or socket errors in the throughput runs")


# ------------------------------------------------------------------ 2. cold start and RSS

def cold_start_and_rss(name: str, app: str, env: Mapping[str, str], logs: Path,
                       one_request: Callable[[load.Client], int], runs: int = 5,
                       requests: int = 1000,
                       first: Callable[[servers.Server], float] | None = None,
                       ) -> tuple[float, float, float, float | None]:
    """(median seconds to the first 200 on /health, worker RSS MB after `requests`, master
    RSS MB, median seconds to the first 200 of `first` when given)."""
    colds, firsts = [], []
    for _ in range(runs):
        server = servers.start(name, app, env, logs)
        try:
            colds.append(server.wait_for())
            if first:
                firsts.append(first(server))
        finally:
            server.stop()
    server = servers.start(name, app, env, logs)
    try:
        server.wait_for()
        if first:
            first(server)
        client = load.Client(server.url)
        statuses = {one_request(client) for _ in range(requests)}
        client.close()
        if not statuses <= {200, 202}:
            raise RuntimeError(f"{name} answered {statuses} to the RSS requests")
        worker, master = server.rss_mb()
    finally:
        server.stop()
    return load.median(colds), worker, master, load.median(firsts) if firsts else None


def gateway_footprint(report: Report, sink: str, logs: Path) -> None:
    print("cold start and RSS, no cluster", flush=True)
    post = lambda c: c.call("POST", "/stores/store-bench", CREATE_BODY, JSON)[0]  # noqa: E731
    cold, worker, master, _ = cold_start_and_rss(
        "gateway", APPS["gateway"], OPEN_GATEWAY | {"K_SINK": sink, "LIST_URL": sink}, logs,
        post)
    hello_cold, hello_worker, _, _ = cold_start_and_rss(
        "hello", "bench.apps:hello()", {}, logs, lambda c: c.call("GET", "/")[0])
    report.add("gateway cold start (process start → first 200), median of 5",
               f"{cold:.2f} s (bare hello {hello_cold:.2f} s)", "< 0.4 s", cold < 0.4)
    report.add("gateway RSS after 1,000 requests (the gunicorn worker; master beside it)",
               f"{worker:.0f} MB (master {master:.0f} MB; bare hello worker "
               f"{hello_worker:.0f} MB)", "< 40 MB", worker < 40)


def function_envs(stack: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The functions' settings as `make dev` gives them (its ServiceAccounts' kubeconfigs),
    taking events from the bench directly (no sender checks) and with no store cap."""
    state = Path(stack["state_dir"])
    runner = DIRECT | UNLIMITED | {"RUNNER_IMAGE": "storeplatform/helm-runner:dev",
                                   "K_SINK": stack["broker"], "PLATFORM_NAMESPACE": NS}
    return {
        "create-store": runner | {"KUBECONFIG": str(state / "create-store.kubeconfig"),
                                  "RUNNER_CHART_PATH": str(servers.REPO_ROOT / "store-chart"),
                                  "STORE_VALUES_PROFILE": "local"},
        "delete-store": runner | {"KUBECONFIG": str(state / "delete-store.kubeconfig")},
        "list-stores": DIRECT | {"KUBECONFIG": str(state / "list-stores.kubeconfig"),
                                 "PLATFORM_NAMESPACE": NS},
    }


def function_footprints(report: Report, stack: Mapping[str, str], logs: Path) -> None:
    print("cold start and RSS of the functions", flush=True)
    envs = function_envs(stack)
    create = event(contract.CREATE, {"name": "store-bench-rss"}, "store-bench-rss")
    delete = event(contract.DELETE, {"name": "store-bench-never"}, "store-bench-never")
    listing = event(contract.LIST, {})
    requests = {
        "create-store": lambda c: c.call("POST", "/", create[1], create[0])[0],
        "delete-store": lambda c: c.call("POST", "/", delete[1], delete[0])[0],
        "list-stores": lambda c: c.call("POST", "/", listing[1], listing[0])[0],
    }
    for name in FUNCTIONS:
        first = None
        if name == "list-stores":
            def first(server: servers.Server) -> float:
                return server.wait_for("POST", "/", listing[1], listing[0])
        cold, worker, master, answered = cold_start_and_rss(
            name, APPS[name], envs[name], logs, requests[name], first=first)
        extra = f"; first list answer {answered:.2f} s" if answered is not None else ""
        report.add(f"{name}: cold start (→ first 200 on /health), RSS after 1,000 events",
                   f"{cold:.2f} s{extra}; worker {worker:.0f} MB (master {master:.0f} MB)")


# ------------------------------------------------------------------ 3. GET /stores at scale

class Lists:
    """A gateway and a list-stores of the bench's own (1 worker x 4 threads each) on the
    dev cluster, and the six list calls list-stores made before, as its ServiceAccount."""

    def __init__(self, stack: Mapping[str, str], admin, logs: Path) -> None:
        kubeconfig = str(Path(stack["state_dir"]) / "list-stores.kubeconfig")
        self.admin = admin
        self.lister = servers.start("bench-list-stores", APPS["list-stores"],
                                    function_envs(stack)["list-stores"], logs)
        self.lister.wait_for()
        self.gateway = servers.start("bench-gateway", APPS["gateway"], OPEN_GATEWAY | {
            "K_SINK": stack["broker"], "LIST_URL": self.lister.url}, logs)
        self.gateway.wait_for()
        self.verbs = kube.connect({"KUBECONFIG": kubeconfig, "KUBE_TIMEOUT": 60.0})
        self.results: dict[int, dict[str, float]] = {}

    def wait_for_count(self, stores: int, timeout: float = 600) -> None:
        client = load.Client(self.gateway.url)
        deadline = time.monotonic() + timeout
        while True:
            status, body, _ = client.call("GET", "/stores")
            if status == 200 and len(json.loads(body)["stores"]) >= stores:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"GET /stores never showed {stores} stores")
            time.sleep(1)

    def measure(self, stores: int, samples: int, raw_samples: int) -> dict[str, float]:
        self.wait_for_count(stores)
        gateway, lister = load.Client(self.gateway.url), load.Client(self.lister.url)
        headers, body = event(contract.LIST, {})
        for _ in range(5):  # warm
            gateway.call("GET", "/stores")
        before = apiserver.sample(self.admin)
        through_gateway = [gateway.call("GET", "/stores")[2] for _ in range(samples)]
        direct = [lister.call("POST", "/", body, headers)[2] for _ in range(samples)]
        after = apiserver.sample(self.admin)
        raw = load.timed(lambda: store_cluster.read_state(self.verbs, NS), raw_samples)
        figures = {
            "gateway_p50": load.median(through_gateway),
            "gateway_p99": load.percentile(through_gateway, 99),
            "direct_p50": load.median(direct), "raw_p50": load.median(raw),
            "calls_per_get": after.calls(before, "storeplatform-list-stores") / (2 * samples),
            "rss": self.lister.rss_mb()[0], "bytes": len(gateway.call("GET", "/stores")[1]),
        }
        self.results[stores] = figures
        print(f"  {stores} stores: {figures}", flush=True)
        return figures

    def stop(self) -> None:
        self.gateway.stop()
        self.lister.stop()


def list_rows(report: Report, lists: Lists) -> None:
    sizes = sorted(lists.results)
    one, mid = lists.results[sizes[0]], lists.results.get(500)
    for size in sizes:
        r = lists.results[size]
        report.add(f"`GET /stores` at {size:,} store{'s' * (size != 1)} (through the gateway; "
                   "list-stores alone; the six list calls it used to make)",
                   f"p50 {ms(r['gateway_p50'])}, p99 {ms(r['gateway_p99'])}; "
                   f"{ms(r['direct_p50'])}; {ms(r['raw_p50'])} ({r['bytes'] / 1024:.0f} KB)")
    if mid:
        growth = mid["gateway_p50"] / one["gateway_p50"]
        report.add("`GET /stores` at 500 stores vs 1 store (p50, through the gateway)",
                   ratio(growth), "≤ 2x", growth <= 2.0)
        memory = mid["gateway_p50"] / mid["raw_p50"]
        report.add("`GET /stores` at 500 stores vs the six raw list calls",
                   ratio(memory), "≤ 0.2x", memory <= 0.2)
    calls = max(r["calls_per_get"] for r in lists.results.values())
    report.add("API calls per `GET /stores`, steady state (apiserver metrics, list-stores' "
               "ServiceAccount)", f"{calls:g}", "0", calls == 0)
    report.add("list-stores worker RSS with the cache (" +
               ", ".join(f"{s:,} store{'s' * (s != 1)}" for s in sizes) + ")",
               ", ".join(f"{lists.results[s]['rss']:.0f} MB" for s in sizes))


# ------------------------------------------------------------------ 4. provisioning

def acknowledgements(report: Report, stack: Mapping[str, str], admin, logs: Path) -> list[str]:
    """10 create events back to back straight to a create-store (as the Broker delivers)."""
    print("create-store acknowledgement, 10 back to back", flush=True)
    server = servers.start("bench-create-store", APPS["create-store"],
                           function_envs(stack)["create-store"], logs)
    try:
        server.wait_for()
        client = load.Client(server.url)
        names = [f"store-ack-{i}" for i in range(10)]
        before = apiserver.sample(admin)
        acks = []
        for name in names:
            headers, body = event(contract.CREATE, {"name": name}, name)
            status, _, took = client.call("POST", "/", body, headers)
            if status != 202:
                raise RuntimeError(f"create-store answered {status}")
            acks.append(took)
        after = apiserver.sample(admin)
    finally:
        server.stop()
    calls = after.calls(before, "storeplatform-create-store") / len(names)
    report.add("create-store acknowledgement, 10 creates back to back (p50 / p99)",
               f"{ms(load.median(acks))} / {ms(load.percentile(acks, 99))}", "p99 < 100 ms",
               load.percentile(acks, 99) < 100)
    report.add("API calls per create event (create-store's ServiceAccount, in sequence)",
               f"{calls:.1f}")
    return names


def provisioning_rows(report: Report, stack: Mapping[str, str], auth: dict[str, str], admin,
                      concurrencies: list[int]) -> None:
    batches = []
    for level in concurrencies:
        count = 3 if level == 1 else level
        names = [f"store-c{level}-{i}" for i in range(count)]
        print(f"provisioning: {count} stores, {level} at a time", flush=True)
        before = apiserver.sample(admin)
        batch = provisioning.run_batch(stack["gateway"], auth, admin, level, names)
        after = apiserver.sample(admin)
        batches.append(batch)
        # the runners (one ServiceAccount per store) and whatever else runs in the namespace
        runner_calls = after.calls(before, apiserver.OTHERS) / count
        base = batches[0].stores_per_minute
        report.add(f"{level} concurrent create(s) through the gateway and the Broker "
                   f"({count} stores): ack p50 / p99; create → ready p50 / max; stores per "
                   "minute (vs one at a time)",
                   f"{ms(load.median(batch.acks_ms))} / {ms(load.percentile(batch.acks_ms, 99))}"
                   + (f" ({batch.timed_out} answered 504)" if batch.timed_out else "")
                   + f"; {load.median(batch.to_ready_s):.1f} s / {max(batch.to_ready_s):.1f} s; "
                   f"{batch.stores_per_minute:.1f} ({ratio(batch.stores_per_minute / base)})")
        report.add("… meanwhile: API server requests/s (mean, peak 5 s), APF rejections; "
                   "GET /stores p99; runner API calls per store",
                   f"{batch.api_rate:.0f}, {batch.api_peak:.0f}; {batch.apf_rejected:g}; "
                   f"{ms(load.percentile(batch.list_ms, 99))}; {runner_calls:.0f}")
        if batch.timed_out:
            report.note(f"{level} at once: {batch.timed_out} of {count} creates answered 504 "
                        "sink_timeout (the Broker took the event, create-store had not "
                        "answered within EVENT_TIMEOUT); "
                        f"{len(batch.to_ready_s)} of {count} became ready")
        if batch.failed:
            report.note(f"{len(batch.failed)} store(s) of the {level}-at-once batch failed: "
                        + "; ".join(f"{n}: {r}" for n, r in list(batch.failed.items())[:3]))


def capped_batch(report: Report, stack: Mapping[str, str], auth: dict[str, str], admin,
                 level: int, cap: int) -> None:
    """The largest batch again, with a cap on running runner pods. In `make dev` only
    runner pods are Pods in the platform namespace, so a plain pod quota is that cap."""
    print(f"provisioning: {level} at a time, at most {cap} runner pods", flush=True)
    core = client.CoreV1Api(admin)
    quota = {"metadata": {"name": "bench-runner-cap"}, "spec": {"hard": {"pods": str(cap)}}}
    core.create_namespaced_resource_quota(NS, quota, _request_timeout=30)
    try:
        names = [f"store-cap{cap}-{i}" for i in range(level)]
        batch = provisioning.run_batch(stack["gateway"], auth, admin, level, names)
    finally:
        core.delete_namespaced_resource_quota("bench-runner-cap", NS, _request_timeout=30)
    report.add(f"{level} at once with at most {cap} runner pods running (pod quota): ack p50 "
               "/ p99; create → ready p50 / max; stores per minute",
               f"{ms(load.median(batch.acks_ms))} / {ms(load.percentile(batch.acks_ms, 99))}"
               f"; {load.median(batch.to_ready_s):.1f} s / {max(batch.to_ready_s):.1f} s; "
               f"{batch.stores_per_minute:.1f}")


# ------------------------------------------------------------------ the run

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--sizes", default="1,500,5000", help="GET /stores at these counts")
    parser.add_argument("--concurrency", default="1,10,50", help="creates at once")
    parser.add_argument("--runner-cap", type=int, default=0,
                        help="then the largest batch again, with at most this many runner "
                             "pods (a pod ResourceQuota in the platform namespace)")
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    load.require_wrk()
    from tests.conftest import launch, require_controlplane, stop  # the `make dev` fixture's

    try:
        require_controlplane()
    except BaseException as err:  # pytest's skip outside pytest: say what to build
        raise SystemExit(f"make bench needs the control plane: {err}") from None
    state = Path(tempfile.mkdtemp(prefix="bench-"))
    logs = state / "logs"
    report = Report()
    print(f"machine: {report.machine}\nstate and logs: {state}", flush=True)
    sink_port = servers.free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.sink", str(sink_port)],
                            env=servers.python_env({}), cwd=servers.REPO_ROOT)
    sink_url = f"http://127.0.0.1:{sink_port}/"
    proc = None
    try:
        time.sleep(0.5)
        throughput(report, sink_url, logs, args.rounds)
        gateway_footprint(report, sink_url, logs)
        print("starting make dev (control plane, Knative Eventing, functions)", flush=True)
        started = time.monotonic()
        os.environ.update(UNLIMITED)  # its gateway and create-store: thousands of stores
        proc, stack = launch(state / "dev", state / "devstack")
        auth = {"Authorization": f"Bearer {stack['token']}"}
        stack = stack | {"state_dir": str(state / "dev")}
        print(f"  ready in {time.monotonic() - started:.0f} s", flush=True)
        admin = kube_config.new_client_from_config(config_file=stack["kubeconfig"])
        apiserver.count_by_service_account(admin, NS, SERVICE_ACCOUNTS)
        sizes = [int(s) for s in args.sizes.split(",")]
        lists = Lists(stack, admin, logs)
        try:
            synthetic.create(admin, [f"store-syn-{i:05d}" for i in range(sizes[0])])
            lists.measure(sizes[0], 200, 10)
            function_footprints(report, stack, logs)
            ack_names = acknowledgements(report, stack, admin, logs)
            provisioning.Watcher(stack["gateway"], auth).wait(ack_names)
            levels = [int(c) for c in args.concurrency.split(",")]
            provisioning_rows(report, stack, auth, admin, levels)
            if args.runner_cap:
                capped_batch(report, stack, auth, admin, max(levels), args.runner_cap)
            real = len(json.loads(load.Client(stack["gateway"]).call(
                "GET", "/stores", headers=auth)[1])["stores"]) - sizes[0]
            for size in sizes[1:]:
                print(f"synthetic stores: up to {size} stores in all", flush=True)
                made = time.monotonic()
                synthetic.create(admin, [f"store-syn-{i:05d}" for i in range(size - real)])
                print(f"  made in {time.monotonic() - made:.0f} s", flush=True)
                lists.measure(size, 100 if size <= 1000 else 30, 5 if size <= 1000 else 3)
        finally:
            lists.stop()
        list_rows(report, lists)
    finally:
        if proc is not None:
            stop(proc, 90)
        sink.terminate()
        sink.wait(10)
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    table = report.markdown()
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
