"""provision's decisions under at-least-once delivery, on the fake verbs."""

import json
from datetime import UTC, datetime

import pytest

from storeplatform import contract, manifests
from storeplatform.errors import Kind, PlatformError
from storeplatform.lifecycle.provision import provision

NS = "storeplatform"
JOB = "helm-install-store-a"


def managed_namespace(name="store-a", annotations=None, phase="Active"):
    made = manifests.namespace(name, "woocommerce", datetime(2026, 1, 1, tzinfo=UTC))
    made["metadata"]["annotations"] |= annotations or {}
    return made | {"status": {"phase": phase}}


def delete_job():
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "helm-delete-store-a", "namespace": NS,
                         "labels": contract.store_labels("store-a")}}


def test_a_first_create_reads_nothing_twice_and_patches_only_the_values_owner(
        fake_kube, create_settings):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    calls = fake_kube.calls
    assert sorted(c for c in calls if c[0] == "read") == [
        ("read", "ConfigMap", contract.STORES_CONFIG_MAP),
        ("read", "Job", "helm-delete-store-a"), ("read", "Job", JOB),
        ("read", "Namespace", "store-a")]
    assert [c for c in calls if c[0] in ("patch", "replace")] == [
        # the claim created it; made is written at the claimed version, with no read
        ("replace", "ConfigMap", contract.STORES_CONFIG_MAP),
        ("patch", "Secret", contract.values_secret_name("store-a"))]
    assert [c for c in calls if c[1] == "Job"][-1] == ("create", "Job", JOB)


def test_first_create_makes_every_object_and_one_job(fake_kube, create_settings):
    outcome = provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert (outcome.job, outcome.created, str(outcome)) == (JOB, True, f"job {JOB} created")
    namespace = fake_kube.get("Namespace", "store-a")
    assert namespace["metadata"]["labels"][contract.LABEL_ENGINE] == "woocommerce"
    assert fake_kube.get("Secret", "store-credentials", "store-a")
    assert fake_kube.get("RoleBinding", contract.RUNNER_NAME, "store-a")
    (job,) = fake_kube.of_kind("Job")
    assert job["metadata"]["annotations"][contract.ANNOTATION_EVENT_ID] == "e-1"
    values = fake_kube.get("Secret", contract.values_secret_name("store-a"), NS)
    assert values["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]


@pytest.mark.parametrize("second_id", ["e-1", "e-2"], ids=["redelivery", "new-request"])
def test_duplicate_create_makes_no_second_job_nor_new_passwords(fake_kube, create_settings,
                                                                 second_id):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    passwords = dict(fake_kube.get("Secret", "store-credentials", "store-a")["stringData"])
    job_uid = fake_kube.get("Job", JOB, NS)["metadata"]["uid"]
    outcome = provision(fake_kube, "store-a", "woocommerce", second_id, create_settings)
    assert (outcome.created, str(outcome)) == (False, f"job {JOB} kept")
    assert [j["metadata"]["uid"] for j in fake_kube.of_kind("Job")] == [job_uid]
    assert fake_kube.get("Secret", "store-credentials", "store-a")["stringData"] == passwords


@pytest.mark.parametrize("state", ["running", "succeeded"])
def test_a_live_or_finished_job_is_kept_for_any_request(fake_kube, create_settings, state):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    fake_kube.set_job_state(JOB, NS, state)
    assert provision(fake_kube, "store-a", "woocommerce", "e-2", create_settings).created is False
    assert fake_kube.get("Job", JOB, NS)["metadata"]["annotations"][
        contract.ANNOTATION_EVENT_ID] == "e-1"


def test_a_failed_job_is_kept_on_a_redelivery(fake_kube, create_settings):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    fake_kube.set_job_state(JOB, NS, "failed")
    uid = fake_kube.get("Job", JOB, NS)["metadata"]["uid"]
    assert provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings).created is False
    assert fake_kube.get("Job", JOB, NS)["metadata"]["uid"] == uid


def test_a_failed_job_is_replaced_on_a_new_request(fake_kube, create_settings):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    fake_kube.set_job_state(JOB, NS, "failed")
    old_uid = fake_kube.get("Job", JOB, NS)["metadata"]["uid"]
    assert provision(fake_kube, "store-a", "woocommerce", "e-2", create_settings).created is True
    job = fake_kube.get("Job", JOB, NS)
    assert job["metadata"]["uid"] != old_uid
    assert job["metadata"]["annotations"][contract.ANNOTATION_EVENT_ID] == "e-2"
    values = fake_kube.get("Secret", contract.values_secret_name("store-a"), NS)
    assert [o["uid"] for o in values["metadata"]["ownerReferences"]] == [job["metadata"]["uid"]]


def test_a_job_still_being_removed_is_retry_later(fake_kube, create_settings):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    fake_kube.set_job_state(JOB, NS, "failed")
    fake_kube.get("Job", JOB, NS)["metadata"]["finalizers"] = ["example.com/slow"]
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-a", "woocommerce", "e-2", create_settings)
    assert (err.value.kind, err.value.code) == (Kind.RETRY_LATER, "job_being_removed")


def test_create_while_the_delete_job_runs_is_retry_later(fake_kube, create_settings):
    fake_kube.add(managed_namespace())
    fake_kube.add(delete_job())
    fake_kube.set_job_state("helm-delete-store-a", NS, "running")
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert (err.value.kind, err.value.code) == (Kind.RETRY_LATER, "store_deleting")
    assert fake_kube.of_kind("Secret") == []


def test_create_while_the_namespace_goes_is_retry_later(fake_kube, create_settings):
    fake_kube.add(managed_namespace(phase="Terminating"))
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert (err.value.kind, err.value.code) == (Kind.RETRY_LATER, "store_deleting")
    assert fake_kube.of_kind("Job") == []


def test_a_deleting_mark_no_delete_job_carries_on_does_not_block_a_newer_create(
        fake_kube, create_settings):
    """A delete that was dead-lettered after marking the namespace (or whose failed Job
    expired): the newer create provisions the store again instead of waiting for ever."""
    fake_kube.add(managed_namespace(annotations={contract.ANNOTATION_PHASE: "deleting"}))
    assert provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings).created
    assert [j["metadata"]["name"] for j in fake_kube.of_kind("Job")] == [JOB]


def test_create_after_a_finished_delete_removes_the_old_delete_job(fake_kube, create_settings):
    fake_kube.add(delete_job())
    fake_kube.set_job_state("helm-delete-store-a", NS, "succeeded")
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert [j["metadata"]["name"] for j in fake_kube.of_kind("Job")] == [JOB]


def test_a_namespace_not_made_by_the_platform_is_a_conflict(fake_kube, create_settings):
    fake_kube.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "store-a"}})
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert (err.value.kind, err.value.code) == (Kind.CONFLICT, "namespace_conflict")
    assert fake_kube.of_kind("Job") == [] and fake_kube.of_kind("Secret") == []


def test_base_domain_reaches_the_chart_values(fake_kube, create_settings):
    provision(fake_kube, "store-a", "woocommerce", "e-1",
              create_settings | {"STORE_BASE_DOMAIN": "shops.example.com"})
    values = fake_kube.get("Secret", contract.values_secret_name("store-a"), NS)
    assert json.loads(values["stringData"]["values.yaml"])["ingress"] == {
        "baseDomain": "shops.example.com"}


def test_create_makes_the_stores_own_runner_identity(fake_kube, create_settings):
    provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    namespace = fake_kube.get("Namespace", "store-a")
    account = fake_kube.get("ServiceAccount", "storeplatform-runner-store-a", NS)
    assert account["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Namespace", "name": "store-a",
        "uid": namespace["metadata"]["uid"], "blockOwnerDeletion": False}]
    binding = fake_kube.get("RoleBinding", contract.RUNNER_NAME, "store-a")
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": "storeplatform-runner-store-a", "namespace": NS}]
    (job,) = fake_kube.of_kind("Job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "storeplatform-runner-store-a"


def test_an_account_left_by_an_earlier_store_of_that_name_is_retry_later(fake_kube,
                                                                        create_settings):
    fake_kube.add({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "storeplatform-runner-store-a", "namespace": NS,
        "ownerReferences": [{"kind": "Namespace", "name": "store-a", "uid": "gone"}]}})
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert (err.value.kind, err.value.code) == (Kind.RETRY_LATER, "runner_identity_pending")
    assert fake_kube.of_kind("Job") == []


@pytest.mark.parametrize("missing", ["app.kubernetes.io/managed-by", "storeplatform.io/engine",
                                     "storeplatform.io/created-at",
                                     "pod-security.kubernetes.io/enforce"])
def test_a_namespace_without_every_platform_mark_is_never_adopted(fake_kube, create_settings,
                                                                  missing):
    squatted = managed_namespace()
    del squatted["metadata"]["labels"][missing]
    fake_kube.add(squatted)
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings)
    assert (err.value.kind, err.value.code) == (Kind.CONFLICT, "namespace_conflict")
    assert fake_kube.of_kind("Job") == [] and fake_kube.of_kind("Secret") == []


def test_a_namespace_with_every_mark_is_adopted(fake_kube, create_settings):
    fake_kube.add(managed_namespace())
    assert provision(fake_kube, "store-a", "woocommerce", "e-1", create_settings).created


def test_over_the_cap_nothing_is_made(fake_kube, create_settings):
    settings = create_settings | {"MAX_STORES": 2}
    for name in ("store-a", "store-b"):
        provision(fake_kube, name, "woocommerce", f"e-{name}", settings)
    with pytest.raises(PlatformError) as err:
        provision(fake_kube, "store-c", "woocommerce", "e-c", settings)
    assert (err.value.kind, err.value.code) == (Kind.LIMIT_REACHED, "store_limit_reached")
    assert [n["metadata"]["name"] for n in fake_kube.of_kind("Namespace")] == ["store-a",
                                                                                "store-b"]
    assert len(fake_kube.of_kind("Job")) == 2
    # A repeated create of a store that exists is no new store.
    assert provision(fake_kube, "store-a", "woocommerce", "e-store-a", settings).job
