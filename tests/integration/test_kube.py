"""The Kubernetes verbs against the real API server: what each promises, for real."""

from __future__ import annotations

import uuid

import pytest

from storeplatform import kube
from storeplatform.errors import Kind, PlatformError

pytestmark = pytest.mark.integration


@pytest.fixture
def verbs(cluster):
    return kube.connect({"KUBECONFIG": cluster.kubeconfig, "KUBE_TIMEOUT": 10.0})


@pytest.fixture
def namespace(verbs):
    name = f"it-kube-{uuid.uuid4().hex[:8]}"
    verbs.create_or_keep({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    verbs.delete_if_present("Namespace", name)


def config_secret(namespace: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "verbs", "namespace": namespace, "labels": {"test": "kube"}},
        "stringData": {"key": value}}


def test_create_or_keep_keeps_what_stands(verbs, namespace):
    created = verbs.create_or_keep(config_secret(namespace, "first"))
    assert created["metadata"]["uid"]
    assert verbs.create_or_keep(config_secret(namespace, "second")) is None
    kept = verbs.read_or_none("Secret", "verbs", namespace)
    assert kept["metadata"]["uid"] == created["metadata"]["uid"]
    assert kept["data"]["key"] == "Zmlyc3Q="  # "first"


def test_create_or_replace_replaces(verbs, namespace):
    verbs.create_or_replace(config_secret(namespace, "first"))
    verbs.create_or_replace(config_secret(namespace, "second"))
    assert verbs.read_or_none("Secret", "verbs", namespace)["data"]["key"] == "c2Vjb25k"


def test_read_of_a_missing_object_is_none(verbs, namespace):
    assert verbs.read_or_none("Job", "no-such-job", namespace) is None
    assert verbs.read_or_none("Namespace", f"{namespace}-none") is None


def test_delete_if_present_is_idempotent_and_honours_the_uid(verbs, namespace):
    created = verbs.create_or_keep(config_secret(namespace, "x"))
    verbs.delete_if_present("Secret", "verbs", namespace, uid="not-its-uid")
    assert verbs.read_or_none("Secret", "verbs", namespace) is not None
    verbs.delete_if_present("Secret", "verbs", namespace, uid=created["metadata"]["uid"])
    assert verbs.read_or_none("Secret", "verbs", namespace) is None
    verbs.delete_if_present("Secret", "verbs", namespace)  # gone already: fine


def test_patch_merges_and_list_selects(verbs, namespace):
    verbs.create_or_keep(config_secret(namespace, "x"))
    verbs.patch("Secret", "verbs", {"metadata": {"annotations": {"a": "1"}}}, namespace)
    (item,) = verbs.list_items("Secret", namespace, labels="test=kube")
    assert item["metadata"]["annotations"] == {"a": "1"}
    assert verbs.list_items("Secret", namespace, labels="test=other") == []


def test_patch_of_a_missing_object_is_retry_later(verbs, namespace):
    with pytest.raises(PlatformError) as err:
        verbs.patch("Secret", "no-such-secret", {"metadata": {}}, namespace)
    assert err.value.kind is Kind.RETRY_LATER


def config_map(namespace: str, value: str, resource_version: str | None = None) -> dict:
    meta = {"name": "record", "namespace": namespace}
    if resource_version:
        meta["resourceVersion"] = resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


def test_replace_at_a_version_loses_to_a_write_in_between(verbs, namespace):
    created = verbs.create_or_keep(config_map(namespace, "first"))
    read = created["metadata"]["resourceVersion"]
    won = verbs.replace(config_map(namespace, "mine", read))
    assert won["data"] == {"v": "mine"}
    # A second writer that read the same version loses, and nothing it wrote stands.
    with pytest.raises(PlatformError) as err:
        verbs.replace(config_map(namespace, "theirs", read))
    assert err.value.code == "kubernetes_conflict"
    assert verbs.read_or_none("ConfigMap", "record", namespace)["data"] == {"v": "mine"}


def test_delete_with_a_resource_version_spares_a_changed_object(verbs, namespace):
    created = verbs.create_or_keep(config_map(namespace, "first"))
    stale = created["metadata"]["resourceVersion"]
    current = verbs.replace(config_map(namespace, "second", stale))
    assert verbs.delete_if_present("ConfigMap", "record", namespace,
                                   resource_version=stale) is False
    assert verbs.read_or_none("ConfigMap", "record", namespace) is not None
    assert verbs.delete_if_present("ConfigMap", "record", namespace,
                                   resource_version=current["metadata"]["resourceVersion"])
    assert verbs.read_or_none("ConfigMap", "record", namespace) is None
