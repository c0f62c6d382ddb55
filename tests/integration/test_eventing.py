"""knative/ on the real Knative Eventing: the controllers, webhook, broker and channel built
from knative.dev/eventing v0.50.0 (hack/localknative), on the local control plane.

What is faked: Knative Serving (Services are marked Ready with their cluster address) and
the pod runtime (KWOK). Everything that decides whether the Broker and Triggers work, and
what happens to an event, is upstream code.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

import localknative
from devstack import bootstrap, deploy
from localkube import network
from tests.helpers import MODES, Recorder, encode, serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NS = "storeplatform"
RECORDER = "event-recorder"
RUNNER_PROBE = "storeplatform-runner-store-eventing-probe"  # as a store's runner account
LIFECYCLE_TYPES = ("io.storeplatform.store.ready", "io.storeplatform.store.failed",
                   "io.storeplatform.store.deleted")
# The functions run in-process and are sent events directly (no Broker): no sender check.
RUNNER = {"RUNNER_IMAGE": "storeplatform/helm-runner:dev",
          "RUNNER_CHART_PATH": str(ROOT / "store-chart"), "STORE_VALUES_PROFILE": "local",
          "HELM_TIMEOUT": "3m", "MAX_STORES": 1000,
          "EVENT_AUTH": "none"}


def custom(api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def get(api, group: str, plural: str, name: str) -> dict:
    return custom(api).get_namespaced_custom_object(group, "v1", NS, plural, name)


def conditions(obj: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


class Eventing:
    """knative/ applied to the real Eventing, the broker ingress on a loopback port, and a
    recorder that a test-only Trigger feeds with the runner's lifecycle events."""

    def __init__(self, cluster, admin, waited, broker: str, recorder: Recorder) -> None:
        self.cluster, self.admin, self.waited = cluster, admin, waited
        self.broker, self.recorder = broker, recorder

    def post(self, headers: dict[str, str], body: bytes) -> int:
        """POST to the broker ingress with OIDC on, as a sender the EventPolicies admit for
        the event's type: the gateway for requests, a store's runner for outcomes."""
        event_type = {k.lower(): v for k, v in headers.items()}.get("ce-type", "")
        sender = "storeplatform-gateway" if event_type in (
            "io.storeplatform.store.create", "io.storeplatform.store.delete") else RUNNER_PROBE
        core = client.CoreV1Api(self.admin)
        if sender == RUNNER_PROBE:
            try:
                core.create_namespaced_service_account(NS, {"metadata": {"name": sender}},
                                                       _request_timeout=10)
            except client.ApiException as err:
                if err.status != 409:
                    raise
        token = core.create_namespaced_service_account_token(
            sender, NS, {"spec": {"audiences": [f"eventing.knative.dev/broker/{NS}/default"],
                                  "expirationSeconds": 600}}, _request_timeout=10).status.token
        headers = dict(headers) | {"Authorization": f"Bearer {token}"}
        request = urllib.request.Request(self.broker, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status

    def recorded(self, event_type: str, subject: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for req in self.recorder.requests:
                headers = {k.lower(): v for k, v in req["headers"].items()}
                if headers.get("ce-type") == event_type and headers.get("ce-subject") == subject:
                    return {"headers": headers, "data": json.loads(req["body"] or b"null")}
            time.sleep(0.5)
        raise AssertionError(f"no {event_type} for {subject} reached the recorder; got "
                             f"{[r['headers'].get('Ce-Type') for r in self.recorder.requests]}")


@pytest.fixture(scope="module")
def eventing(cluster, admin_api) -> Iterator[Eventing]:
    localknative.start(cluster)
    recorder = Recorder()
    with serve(recorder) as recorder_url:
        port = int(recorder_url.rsplit(":", 1)[1])
        network.publish(cluster.state_dir, NS, RECORDER, {0: network.tcp_backend(port)})
        waited = deploy.deploy(admin_api)
        # A Trigger of the test's own: the lifecycle events the runner reports, to the recorder.
        trigger = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
                   "metadata": {"name": "test-lifecycle", "namespace": NS},
                   "spec": {"broker": "default",
                            "filters": [{"prefix": {"type": "io.storeplatform.store."}},
                                        {"not": {"exact": {"type":
                                                           "io.storeplatform.store.create"}}},
                                        {"not": {"exact": {"type":
                                                           "io.storeplatform.store.delete"}}}],
                            "subscriber": {"uri": f"http://{RECORDER}.{NS}.svc.cluster.local"}}}
        custom(admin_api).create_namespaced_custom_object("eventing.knative.dev", "v1", NS,
                                                          "triggers", trigger)
        deploy.wait_ready(custom(admin_api), "test", trigger, time.monotonic(), 120)
        broker_url = get(admin_api, "eventing.knative.dev", "brokers", "default")[
            "status"]["address"]["url"]
        parsed = urllib.request.urlparse(broker_url)
        forward = network.PortForward(cluster.state_dir, parsed.hostname, parsed.port or 80)
        try:
            yield Eventing(cluster, admin_api, waited, f"http://127.0.0.1:{forward.port}"
                           f"{parsed.path}", recorder)
        finally:
            forward.close()
            custom(admin_api).delete_namespaced_custom_object(
                "eventing.knative.dev", "v1", NS, "triggers", "test-lifecycle")


def test_every_wait_of_the_up_sh_order_ends_on_the_real_controller(eventing):
    waited = {w.obj: w for w in eventing.waited}
    assert set(waited) >= {"Broker storeplatform/default", "Trigger storeplatform/create-store",
                           "Trigger storeplatform/delete-store",
                           "Service storeplatform/list-stores",
                           "SinkBinding storeplatform/gateway-to-broker"}
    broker = get(eventing.admin, "eventing.knative.dev", "brokers", "default")
    assert set(conditions(broker).values()) == {"True"}, conditions(broker)
    for condition in ("Addressable", "DeadLetterSinkResolved", "FilterReady", "IngressReady",
                      "TriggerChannelReady", "Ready"):
        assert conditions(broker)[condition] == "True", condition
    assert broker["status"]["address"]["url"] == localknative.Knative.broker_url(NS, "default")
    assert broker["status"]["deadLetterSinkUri"] == \
        f"http://list-stores.{NS}.svc.cluster.local/dead-letter"
    # Defaulted by the real webhook: the channel the Broker runs on.
    assert broker["spec"]["config"]["name"] == "config-br-default-channel"
    for name, service in (("create-store", "create-store"), ("delete-store", "delete-store")):
        trigger = get(eventing.admin, "eventing.knative.dev", "triggers", name)
        assert conditions(trigger)["Ready"] == "True"
        assert conditions(trigger)["SubscriptionReady"] == "True"
        assert trigger["status"]["subscriberUri"] == f"http://{service}.{NS}.svc.cluster.local"
        assert trigger["status"]["deadLetterSinkUri"] == broker["status"]["deadLetterSinkUri"]


def test_sinkbindings_gave_k_sink_to_the_producers(eventing):
    """Set by the webhook when a Service is created (deploy waits until the webhook
    intercepts Services first), or else by the SinkBinding reconciler's patch: deploy ends
    only once every Service carries it."""
    for name in ("gateway", "create-store", "delete-store"):
        ksvc = get(eventing.admin, "serving.knative.dev", "services", name)
        env = {e["name"]: e.get("value") for e in
               ksvc["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env.get("K_SINK") == localknative.Knative.broker_url(NS, "default"), name


def test_the_sinkbinding_reconciler_may_patch_services_through_servings_aggregated_role(
        eventing):
    """Serving's release labels a ClusterRole duck.knative.dev/podspecable; the cluster
    aggregates it into Eventing's podspecable-binding role, bound to its webhook (which runs
    the SinkBinding reconciler). Without it the reconciler cannot bind a Service the
    webhook missed."""
    review = client.AuthorizationV1Api(eventing.admin).create_subject_access_review({
        "spec": {"user": "system:serviceaccount:knative-eventing:eventing-webhook",
                 "resourceAttributes": {"group": "serving.knative.dev", "resource": "services",
                                        "verb": "patch", "namespace": NS}}},
        _request_timeout=10)
    assert review.status.allowed, review.status


@pytest.mark.parametrize("mode", MODES)
def test_the_real_broker_ingress_takes_both_content_modes(eventing, mode):
    headers, body = encode("io.storeplatform.store.ready", {"name": f"store-mode-{mode[:3]}"},
                           mode, subject=f"store-mode-{mode[:3]}")
    assert eventing.post(headers, body) == 202
    got = eventing.recorded("io.storeplatform.store.ready", f"store-mode-{mode[:3]}", 30)
    assert got["data"] == {"name": f"store-mode-{mode[:3]}"}
    # The broker delivers in binary mode (the Triggers' format), whatever came in.
    assert got["headers"]["ce-specversion"] == "1.0"


def test_the_runner_reports_ready_failed_and_deleted_through_the_real_broker(
        eventing, tmp_path):
    from storeplatform import create_store, delete_store

    admin_kubeconfig = Path(eventing.cluster.kubeconfig)
    kubeconfigs = {fn: str(bootstrap.service_account_kubeconfig(
        eventing.admin, admin_kubeconfig, NS, f"storeplatform-{fn}", tmp_path / f"{fn}.kc"))
        for fn in ("create-store", "delete-store")}
    sink = {"K_SINK": eventing.broker}
    create = create_store.create_app(RUNNER | sink | {"KUBECONFIG": kubeconfigs["create-store"]})
    delete = delete_store.create_app(sink | {"KUBECONFIG": kubeconfigs["delete-store"],
                                             "RUNNER_IMAGE": RUNNER["RUNNER_IMAGE"],
                                             "EVENT_AUTH": "none"})
    broken = create_store.create_app(RUNNER | sink | {
        "KUBECONFIG": kubeconfigs["create-store"], "JOB_BACKOFF_LIMIT": 0,
        "RUNNER_CHART_PATH": str(tmp_path / "no-such-chart")})

    def send(app, event_type, name):
        headers, body = encode(event_type, {"name": name}, "binary", subject=name)
        response = app.test_client().post("/", headers=headers, data=body)
        assert response.status_code == 202, response.data

    send(create, "io.storeplatform.store.create", "store-events-ok")
    send(broken, "io.storeplatform.store.create", "store-events-bad")
    ready = eventing.recorded("io.storeplatform.store.ready", "store-events-ok", 240)["data"]
    assert ready.pop("action") == "install" and ready.pop("durationSeconds") > 0
    assert ready == {"name": "store-events-ok"}
    failed = eventing.recorded("io.storeplatform.store.failed", "store-events-bad", 120)
    assert failed["data"]["reason"].startswith("helm upgrade --install failed:")
    send(delete, "io.storeplatform.store.delete", "store-events-ok")
    send(delete, "io.storeplatform.store.delete", "store-events-bad")
    deleted = eventing.recorded("io.storeplatform.store.deleted", "store-events-ok", 180)["data"]
    assert deleted.pop("action") == "delete" and deleted.pop("durationSeconds") > 0
    assert deleted == {"name": "store-events-ok"}
    eventing.recorded("io.storeplatform.store.deleted", "store-events-bad", 180)
