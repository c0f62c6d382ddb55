"""What to do next about a failed store: one sentence from its reason and the failed step.

Shown under "Failed: ..." in the dashboard and returned as `nextStep` by GET /stores.
"""

from __future__ import annotations

RETRY = "Retry creates it again with the same name and credentials."

# (words in the reason, advice), first match wins; the reason is the runner's one line.
_BY_REASON: tuple[tuple[tuple[str, ...], str], ...] = (
    (("delete was not delivered",),
     "The Broker gave up delivering the delete (see Undelivered events): delete it again "
     "once delete-store answers; `kubectl -n storeplatform logs` of delete-store says why."),
    (("delete failed",),
     "Delete it again; if it keeps failing, look at `kubectl -n storeplatform logs "
     "job/helm-delete-{store}`."),
    (("helm test",),
     "The store installed but the test order did not go through: open the storefront and "
     "check checkout, then retry. Logs: `kubectl -n {store} get pods`."),
    (("timed out", "context deadline exceeded", "DeadlineExceeded", "deadline"),
     "A step took longer than allowed (often images still pulling or a volume not binding): "
     "check `kubectl -n {store} get pods,pvc` and retry."),
    (("BackoffLimitExceeded",),
     "Every attempt of the install Job failed: `kubectl -n storeplatform logs "
     "job/helm-install-{store}` shows why; then retry."),
    (("quota", "forbidden", "exceeded"),
     "The cluster refused an object (quota or policy): see `kubectl -n {store} get events`, "
     "fix the limit, then retry."),
    (("pending-install", "pending-upgrade", "another operation"),
     "A previous Helm run was interrupted; retry, the runner repairs the release first."),
)

_BY_STEP = {
    "queued": "The install Job never started: check `kubectl -n storeplatform describe "
              "job/helm-install-{store}` (image, quota, scheduling), then retry.",
    "install": "Helm could not bring the store's objects up: check `kubectl -n {store} get "
               "pods,events`, then retry.",
    "setup": "The first-boot set-up failed: `kubectl -n {store} logs job/{store}-setup` says "
             "why (it is kept when it fails); then retry.",
    "test": "The test order failed: open the storefront and check checkout, then retry.",
}


def next_step(store: str, reason: str | None, failed_step: str | None) -> str:
    """One sentence: what to look at, then what to press."""
    text = reason or ""
    for words, advice in _BY_REASON:
        if any(word.lower() in text.lower() for word in words):
            return _finish(advice.format(store=store), text)
    advice = _BY_STEP.get(failed_step or "", "Look at the reason above, then retry.")
    return _finish(advice.format(store=store), text)


def _finish(advice: str, reason: str) -> str:
    deleting = reason.startswith(("delete failed", "delete was not delivered"))
    return advice if deleting else f"{advice} {RETRY}"
