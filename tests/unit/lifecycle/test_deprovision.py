"""deprovision's decisions under at-least-once delivery, on the fake verbs."""

import pytest

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError
from storeplatform.lifecycle.deprovision import deprovision
from storeplatform.lifecycle.provision import provision

NS = "storeplatform"
DELETE_JOB = "helm-delete-store-a"


@pytest.fixture
def store(fake_kube, create_settings):
    """store-a as create-store leaves it: namespace, Secrets, binding, a running install Job."""
    provision(fake_kube, "store-a", "woocommerce", "create-1", create_settings)
    return fake_kube


def test_delete_of_a_missing_store_is_a_no_op(fake_kube, delete_settings):
    outcome = deprovision(fake_kube, "store-never-was", "e-1", delete_settings)
    assert (outcome.job, str(outcome)) == (None, "store does not exist; nothing to do")
    assert fake_kube.objects == {}
    assert [verb for verb, _, _ in fake_kube.calls] == ["read", "read"]


def test_the_namespace_is_marked_before_the_install_job_goes(store, delete_settings):
    """So no list in between shows a store whose install vanished and no delete."""
    deprovision(store, "store-a", "e-1", delete_settings)
    calls = [(verb, kind) for verb, kind, _ in store.calls]
    assert calls.index(("patch", "Namespace")) < calls.index(("delete", "Job"))


def test_delete_stops_the_install_marks_the_namespace_and_starts_one_job(store,
                                                                         delete_settings):
    outcome = deprovision(store, "store-a", "e-1", delete_settings)
    assert (outcome.job, outcome.created) == (DELETE_JOB, True)
    assert [j["metadata"]["name"] for j in store.of_kind("Job")] == [DELETE_JOB]
    annotations = store.get("Namespace", "store-a")["metadata"]["annotations"]
    assert annotations[contract.ANNOTATION_PHASE] == "deleting"
    job = store.get("Job", DELETE_JOB, NS)
    assert job["metadata"]["labels"][contract.LABEL_ACTION] == "delete"


@pytest.mark.parametrize("second_id", ["e-1", "e-2"], ids=["redelivery", "new-request"])
def test_duplicate_delete_keeps_the_one_job(store, delete_settings, second_id):
    deprovision(store, "store-a", "e-1", delete_settings)
    uid = store.get("Job", DELETE_JOB, NS)["metadata"]["uid"]
    outcome = deprovision(store, "store-a", second_id, delete_settings)
    assert (outcome.created, str(outcome)) == (False, f"job {DELETE_JOB} kept")
    assert [j["metadata"]["uid"] for j in store.of_kind("Job")] == [uid]


def test_a_failed_delete_is_retried_by_a_new_request(store, delete_settings):
    deprovision(store, "store-a", "e-1", delete_settings)
    store.set_job_state(DELETE_JOB, NS, "failed")
    assert deprovision(store, "store-a", "e-1", delete_settings).created is False
    assert deprovision(store, "store-a", "e-2", delete_settings).created is True


def test_a_terminating_namespace_gets_no_new_binding(store, delete_settings):
    store.delete_if_present("RoleBinding", contract.RUNNER_NAME, "store-a")
    store.get("Namespace", "store-a")["status"] = {"phase": "Terminating"}
    deprovision(store, "store-a", "e-1", delete_settings)
    assert store.of_kind("RoleBinding") == []
    assert store.get("Job", DELETE_JOB, NS)


def test_a_namespace_not_made_by_the_platform_is_a_conflict(fake_kube, delete_settings):
    fake_kube.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "store-a"}})
    with pytest.raises(PlatformError) as err:
        deprovision(fake_kube, "store-a", "e-1", delete_settings)
    assert (err.value.kind, err.value.code) == (Kind.CONFLICT, "namespace_conflict")
    assert fake_kube.of_kind("Job") == []
    assert "annotations" not in fake_kube.get("Namespace", "store-a")["metadata"]
