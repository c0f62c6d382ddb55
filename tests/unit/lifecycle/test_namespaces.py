from datetime import UTC, datetime

import pytest

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError
from storeplatform.lifecycle import namespaces


def test_a_missing_namespace_is_none(fake_kube):
    assert namespaces.read_managed(fake_kube, "store-a") is None


@pytest.mark.parametrize("labels", [{}, {contract.LABEL_STORE: "store-b"},
                                    {contract.LABEL_STORE: "store-a"},  # only the store label
                                    contract.store_labels("store-a")])
def test_a_namespace_without_every_platform_mark_is_a_conflict(fake_kube, labels):
    fake_kube.add({"kind": "Namespace", "metadata": {"name": "store-a", "labels": labels}})
    with pytest.raises(PlatformError) as err:
        namespaces.read_managed(fake_kube, "store-a")
    assert err.value.kind is Kind.CONFLICT


@pytest.mark.parametrize(("namespace", "terminating"), [
    ({"metadata": {}, "status": {"phase": "Active"}}, False),
    ({"metadata": {"annotations": {contract.ANNOTATION_PHASE: "deleting"}}}, False),
    ({"metadata": {}, "status": {"phase": "Terminating"}}, True),
])
def test_terminating(namespace, terminating):
    assert namespaces.is_terminating(namespace) is terminating


def test_mark_deleting_keeps_other_annotations_and_says_since_when(fake_kube):
    fake_kube.add({"kind": "Namespace", "metadata": {
        "name": "store-a", "annotations": {contract.ANNOTATION_CREATED_AT: "t"}}})
    namespaces.mark_deleting(fake_kube, "store-a", datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    assert fake_kube.get("Namespace", "store-a")["metadata"]["annotations"] == {
        contract.ANNOTATION_CREATED_AT: "t", contract.ANNOTATION_PHASE: "deleting",
        contract.ANNOTATION_PHASE_AT: "2026-05-01T12:00:00Z"}
