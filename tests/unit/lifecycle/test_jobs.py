"""The runner Job's rules: which standing Job is kept, and what start_once does."""

import pytest

from storeplatform import contract, manifests
from storeplatform.lifecycle import jobs

NS = "storeplatform"


def job(state, made_by):
    conditions = {"running": [], "succeeded": [{"type": "Complete", "status": "True"}],
                  "failed": [{"type": "Failed", "status": "True"}]}[state]
    return {"metadata": {"annotations": {contract.ANNOTATION_EVENT_ID: made_by}},
            "status": {"conditions": conditions}}


@pytest.mark.parametrize(("state", "made_by", "kept"), [
    ("running", "e-1", True), ("running", "e-0", True),
    ("succeeded", "e-1", True), ("succeeded", "e-0", True),
    ("failed", "e-1", True),  # a redelivery of the event that made it: no retry loop
    ("failed", "e-0", False),  # a new request: it retries
])
def test_which_standing_job_is_kept(state, made_by, kept):
    assert jobs.is_kept(job(state, made_by), "e-1") is kept


@pytest.mark.parametrize(("outcome", "line"), [
    (jobs.Outcome("helm-install-store-a", created=True), "job helm-install-store-a created"),
    (jobs.Outcome("helm-install-store-a"), "job helm-install-store-a kept"),
    (jobs.Outcome(None, note="store does not exist"), "store does not exist"),
])
def test_outcome_is_one_log_phrase(outcome, line):
    assert str(outcome) == line


def test_start_once_without_values_starts_the_job_alone(fake_kube, delete_settings):
    job_obj = manifests.runner_job(contract.ACTION_DELETE, "store-a", "e-1", delete_settings)
    assert jobs.start_once(fake_kube, job_obj, "e-1").created is True
    assert fake_kube.of_kind("Secret") == []
    assert [verb for verb, _, _ in fake_kube.calls] == ["read", "create"]


def test_start_once_keeps_a_job_a_concurrent_delivery_just_made(fake_kube, delete_settings):
    job_obj = manifests.runner_job(contract.ACTION_DELETE, "store-a", "e-1", delete_settings)
    original = fake_kube.read_or_none

    def racing_read(kind, name, namespace=None):
        found = original(kind, name, namespace)
        if found is None and not fake_kube.objects:  # the other delivery wins the race
            fake_kube.add(job_obj)
        return found

    fake_kube.read_or_none = racing_read
    outcome = jobs.start_once(fake_kube, job_obj, "e-1")
    assert (outcome.created, len(fake_kube.of_kind("Job"))) == (False, 1)


def test_remove_deletes_only_that_very_job(fake_kube, delete_settings):
    job_obj = manifests.runner_job(contract.ACTION_DELETE, "store-a", "e-1", delete_settings)
    old = fake_kube.add(job_obj)
    stale = {"metadata": dict(old["metadata"], uid="uid-of-an-older-job")}
    jobs.remove(fake_kube, stale)
    assert fake_kube.of_kind("Job") == [old]
    jobs.remove(fake_kube, old)
    assert fake_kube.of_kind("Job") == []
