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


@pytest.mark.parametrize(("namespace", "deleting", "terminating"), [
    ({"metadata": {}, "status": {"phase": "Active"}}, False, False),
    ({"metadata": {"annotations": {contract.ANNOTATION_PHASE: "deleting"}}}, True, False),
    ({"metadata": {"annotations": {contract.ANNOTATION_PHASE: "ready"}}}, False, False),
    ({"metadata": {}, "status": {"phase": "Terminating"}}, True, True),
])
def test_deleting_and_terminating(namespace, deleting, terminating):
    assert namespaces.is_deleting(namespace) is deleting
    assert namespaces.is_terminating(namespace) is terminating


def test_mark_deleting_keeps_other_annotations(fake_kube):
    fake_kube.add({"kind": "Namespace", "metadata": {
        "name": "store-a", "annotations": {contract.ANNOTATION_CREATED_AT: "t"}}})
    namespaces.mark_deleting(fake_kube, "store-a")
    assert fake_kube.get("Namespace", "store-a")["metadata"]["annotations"] == {
        contract.ANNOTATION_CREATED_AT: "t", contract.ANNOTATION_PHASE: "deleting"}
