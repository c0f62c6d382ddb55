"""The provisioning timeline (timeline.py): what the runner records, what list-stores shows."""

import json

import pytest

from storeplatform import contract, timeline


def namespace(recorded: dict | str | None) -> dict:
    annotations = {}
    if recorded is not None:
        annotations[contract.ANNOTATION_TIMELINE] = (
            recorded if isinstance(recorded, str) else json.dumps(recorded))
    return {"metadata": {"name": "store-a", "annotations": annotations}}


def job(created: str) -> dict:
    return {"metadata": {"name": "helm-install-store-a", "creationTimestamp": created}}


STEPS = {"queued": "2026-01-01T10:00:00Z", "install": "2026-01-01T10:00:02Z",
         "setup": "2026-01-01T10:01:00Z", "test": "2026-01-01T10:03:00Z",
         "ready": "2026-01-01T10:03:20Z"}


def test_the_annotation_round_trips():
    assert timeline.read(timeline.annotation(STEPS)) == STEPS


@pytest.mark.parametrize("value", ["not json", "[1]", '{"install": "yesterday"}',
                                   '{"unknown-step": "2026-01-01T10:00:00Z"}'])
def test_a_broken_or_foreign_record_reads_as_nothing(value):
    assert timeline.read({contract.ANNOTATION_TIMELINE: value}) == {}


def test_helms_hook_record_gives_setup_and_test_starts():
    release = {"hooks": [
        {"events": ["post-install", "post-upgrade"],
         "last_run": {"started_at": "2026-01-01T10:01:00.123456789Z", "phase": "Succeeded"}},
        {"events": ["test"], "last_run": {"started_at": "2026-01-01T10:03:00.5Z"}},
        {"events": ["pre-delete"], "last_run": {"started_at": "2026-01-01T09:00:00Z"}},
        {"events": ["test"], "last_run": {}},
    ]}
    assert timeline.hook_starts(release) == {"setup": "2026-01-01T10:01:00Z",
                                             "test": "2026-01-01T10:03:00Z"}
    assert timeline.hook_starts({}) == {}


def test_the_record_is_shown_while_the_job_is_the_one_that_wrote_it():
    assert timeline.of_store(namespace(STEPS), job("2026-01-01T10:00:01Z")) == STEPS
    assert timeline.of_store(namespace(STEPS), None) == STEPS  # the Job's TTL passed


def test_a_new_attempt_whose_runner_has_not_started_shows_only_queued():
    retry = job("2026-01-01T11:00:00Z")  # a retry of the store an hour later
    assert timeline.of_store(namespace(STEPS), retry) == {"queued": "2026-01-01T11:00:00Z"}
    assert timeline.of_store(namespace(None), retry) == {"queued": "2026-01-01T11:00:00Z"}


@pytest.mark.parametrize(("steps", "failed"), [
    ({"queued": "2026-01-01T10:00:00Z"}, "queued"),
    ({k: STEPS[k] for k in ("queued", "install", "setup")}, "setup"),
    (STEPS, "test"),
    ({}, None),
])
def test_the_failed_step_is_the_last_one_started(steps, failed):
    assert timeline.failed_step(steps) == failed
