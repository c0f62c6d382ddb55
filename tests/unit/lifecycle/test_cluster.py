"""The cluster read: one list call per kind, with the contract's selectors; then the view."""

from datetime import UTC, datetime

from storeplatform import contract, deadletters, manifests
from storeplatform.lifecycle import cluster

NS = "storeplatform"
NOW = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)


def test_six_list_calls_whatever_the_number_of_stores(fake_kube):
    for i in range(5):
        fake_kube.add(manifests.namespace(f"store-{i}", "woocommerce", NOW))
    cluster.read_state(fake_kube, NS)
    assert [(verb, kind) for verb, kind, _ in fake_kube.calls] == [
        ("list", "Namespace"), ("list", "Job"), ("list", "Pod"), ("list", "Deployment"),
        ("list", "Ingress"), ("list", "Event")]


def test_the_view_holds_managed_stores_and_dead_letters(fake_kube):
    fake_kube.add(manifests.namespace("store-a", "woocommerce", NOW))
    fake_kube.add({"kind": "Namespace", "metadata": {"name": "kube-system"}})
    fake_kube.add({"kind": "Namespace", "metadata": {  # labelled, but not its own store
        "name": "store-x", "labels": contract.store_labels("store-y")}})
    letter = {"id": "e-1", "type": contract.CREATE, "subject": "store-b",
              "time": "2026-11-26T16:00:00Z", "error": "HTTP 500"}
    fake_kube.add(deadletters.kube_event(letter, NS), name="dead-letter-1")
    fake_kube.add({"kind": "Event", "reason": "Scheduled",
                   "metadata": {"name": "other", "namespace": NS}})
    view = cluster.view(cluster.read_state(fake_kube, NS), now=NOW)
    assert [s["name"] for s in view["stores"]] == ["store-a"]
    assert view["stores"][0]["status"] == "provisioning"
    assert view["deadLetters"] == [letter]
