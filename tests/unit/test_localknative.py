"""localknative without a cluster: which of the release's manifests it applies, how a
Deployment becomes a local process, where kube-proxy would send each Service, and the
status the Serving stand-in writes."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from localknative import manifests, serving
from localknative.install import DEFAULT_CRDS_DIR, eventing_dir, missing
from localkube.options import DEFAULT_BIN_DIR
from tests.conftest import unavailable

DEPLOYMENT = yaml.safe_load(textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: mt-broker-filter, namespace: knative-eventing}
    spec:
      template:
        metadata:
          labels: {eventing.knative.dev/brokerRole: filter}
        spec:
          serviceAccountName: mt-broker-filter
          containers:
          - name: filter
            image: ko://knative.dev/eventing/cmd/broker/filter
            env:
            - {name: SYSTEM_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: CONTAINER_NAME, value: filter}
            - {name: FILTER_PORT, value: "8080"}
            - {name: IMAGE, valueFrom: {configMapKeyRef: {name: images, key: filter}}}
            - {name: GONE, valueFrom: {configMapKeyRef: {name: images, key: nope}}}
            ports:
            - {name: http, containerPort: 8080}
            - {name: metrics, containerPort: 9092}
    """))
SERVICE = yaml.safe_load(textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata: {name: broker-filter, namespace: knative-eventing}
    spec:
      selector: {eventing.knative.dev/brokerRole: filter}
      ports:
      - {name: http, port: 80, targetPort: 8080}
      - {name: http-metrics, port: 9092, targetPort: metrics}
    """))


def test_a_deployment_becomes_a_process_with_its_env_resolved_as_the_kubelet_does():
    pod = manifests.pod(DEPLOYMENT, {"images": {"filter": "ko://filter"}})
    assert pod.binary == "filter"
    assert pod.service_account == "mt-broker-filter"
    assert pod.ports == (8080, 9092)
    assert pod.env == {"SYSTEM_NAMESPACE": "knative-eventing",
                       "POD_NAME": "mt-broker-filter-local", "CONTAINER_NAME": "filter",
                       "FILTER_PORT": "8080", "IMAGE": "ko://filter",
                       "GONE": "unavailable.local/images/nope"}


def test_an_unknown_env_source_is_refused_not_guessed():
    container = {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                      "key": "k"}}}]}
    with pytest.raises(ValueError, match="unsupported env source for X"):
        manifests.container_env(container, "p", "ns", {})


def test_services_route_to_the_pods_their_selector_picks():
    pods = {"mt-broker-filter": manifests.pod(DEPLOYMENT, {})}
    routes = manifests.service_routes([SERVICE], pods, {"mt-broker-filter": DEPLOYMENT})
    assert routes == {("knative-eventing", "broker-filter"): {
        80: ("mt-broker-filter", 8080), 9092: ("mt-broker-filter", 9092)}}


def test_the_serving_stand_in_writes_what_serving_reports_for_a_ready_service():
    ksvc = {"metadata": {"name": "create-store", "namespace": "storeplatform",
                         "generation": 3}}
    status = serving.ready_status(ksvc, "2026-12-01T00:00:00Z")
    assert status["address"]["url"] == "http://create-store.storeplatform.svc.cluster.local"
    assert status["observedGeneration"] == 3
    assert status["latestReadyRevisionName"] == "create-store-00003"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "ConfigurationsReady": "True", "RoutesReady": "True"}
    assert serving.needs_status(ksvc)
    assert not serving.needs_status(ksvc | {"status": status})
    assert serving.needs_status(ksvc | {"status": status, "metadata": ksvc["metadata"]
                                        | {"generation": 4}})


@pytest.fixture(scope="module")
def release():
    if missing(DEFAULT_BIN_DIR, DEFAULT_CRDS_DIR):
        unavailable("Knative Eventing is not built: run `make controlplane knative-crds`")
    return manifests.documents(eventing_dir(DEFAULT_BIN_DIR) / "config")


def test_the_release_manifests_hold_every_component_it_runs(release):
    deployments = manifests.deployments(release)
    assert set(deployments) == set(manifests.COMPONENTS) == set(manifests.START_ORDER)
    kinds = [d["kind"] for d in release]
    first_other = next(i for i, k in enumerate(kinds)
                       if k not in ("Namespace", "CustomResourceDefinition"))
    assert set(kinds[:first_other]) == {"Namespace", "CustomResourceDefinition"}
    assert "CustomResourceDefinition" not in kinds[first_other:]
    assert not {"HorizontalPodAutoscaler", "PodDisruptionBudget"} & set(kinds)
    names = {d["metadata"]["name"] for d in release if d["kind"] in ("Deployment", "Service")}
    assert not {"job-sink", "pingsource-mt-adapter", "request-reply"} & names


def test_every_release_service_of_a_local_pod_gets_a_route(release):
    deployments = manifests.deployments(release)
    maps = manifests.config_maps(release)
    pods = {n: manifests.pod(d, maps) for n, d in deployments.items()}
    routes = manifests.service_routes(release, pods, deployments)
    assert routes[("knative-eventing", "broker-ingress")][80] == ("mt-broker-ingress", 8080)
    assert routes[("knative-eventing", "broker-filter")][80] == ("mt-broker-filter", 8080)
    assert routes[("knative-eventing", "imc-dispatcher")][80] == ("imc-dispatcher", 8080)
    assert routes[("knative-eventing", "eventing-webhook")][443] == ("eventing-webhook", 8443)
    for name, pod in pods.items():
        assert pod.env.get("SYSTEM_NAMESPACE") == "knative-eventing", name
        assert all(not v.startswith("ko://knative.dev/eventing/cmd/webhook") or
                   name == "eventing-webhook" for v in pod.env.values())


def test_oidc_is_turned_on_in_the_release_feature_flags():
    docs = [{"kind": "ConfigMap", "metadata": {"name": "config-features"},
             "data": {"authentication-oidc": "disabled", "other": "x"}},
            {"kind": "ConfigMap", "metadata": {"name": "config-logging"}, "data": {"a": "b"}}]
    changed = manifests.with_features(docs, manifests.FEATURES)
    assert changed[0]["data"] == {"authentication-oidc": "enabled", "other": "x"}
    assert changed[1] == docs[1]
    assert docs[0]["data"]["authentication-oidc"] == "disabled"  # the input is not changed
