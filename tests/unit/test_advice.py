"""What to do next about a failed store (advice.py)."""

import pytest

from storeplatform import advice


@pytest.mark.parametrize(("reason", "step", "words"), [
    ("helm test (test order through the storefront) failed: pod failed", "test",
     ("test order", "storefront", "Retry")),
    ("helm upgrade --install failed: context deadline exceeded", "install",
     ("kubectl -n store-x get pods,pvc", "Retry")),
    ('helm upgrade --install failed: pods "x" is forbidden: exceeded quota', "install",
     ("quota", "kubectl -n store-x get events")),
    ("delete failed: deleting namespace store-x failed", None,
     ("Delete it again", "job/helm-delete-store-x")),
    ("BackoffLimitExceeded", "queued", ("job/helm-install-store-x",)),
    (None, "setup", ("kubectl -n store-x logs job/store-x-setup", "Retry")),
    ("something new", None, ("reason above", "Retry")),
])
def test_the_advice_names_what_to_look_at_and_what_to_press(reason, step, words):
    text = advice.next_step("store-x", reason, step)
    for word in words:
        assert word in text
    assert ("Retry" in text) != (reason or "").startswith("delete failed")


def test_an_undelivered_delete_is_advised_to_delete_again_not_to_create():
    reason = ("delete was not delivered (HTTP 500 from http://delete-store "
              "kubernetes_forbidden); delete again to retry")
    text = advice.next_step("store-a", reason, None)
    assert text.startswith("The Broker gave up delivering the delete")
    assert advice.RETRY not in text
