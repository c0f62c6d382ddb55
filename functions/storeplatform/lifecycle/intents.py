"""The store's intent record on the cluster: claim it for one delivery (optimistic
concurrency on its resourceVersion), apply the intent under a lease, release it, and sweep
records that keep no store standing once their TTL has passed (docs/contract.md "Ordering").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from storeplatform import contract, intent
from storeplatform.errors import Kind, PlatformError
from storeplatform.intent import Intent, Record, Verdict
from storeplatform.kube import CONFLICT, Kube, Obj
from storeplatform.lifecycle.jobs import Outcome

log = logging.getLogger(__name__)

# Settings of create-store and delete-store (docs/knative.md lists them).
SETTINGS: dict[str, Any] = {
    "INTENT_LEASE_SECONDS": 45.0,  # one delivery applies a store's intent at a time
    "INTENT_TTL_SECONDS": 86400.0,  # how long a delete is remembered after its store is gone
    "MAX_CLOCK_SKEW_SECONDS": 300.0,  # how far in the future an event time may be
}
CLAIM_ATTEMPTS = 3
SWEEP_LIMIT = 20  # records removed per delete event at most: the sweep stays cheap

Clock = Callable[[], datetime]
Apply = Callable[[Kube], Outcome]


def utcnow() -> datetime:
    return datetime.now(UTC)


def read(kube: Kube, store: str, platform_ns: str) -> tuple[Obj | None, Record | None]:
    obj = kube.read_or_none("ConfigMap", intent.record_name(store), platform_ns)
    return obj, intent.read_record(obj)


def claim(kube: Kube, store: str, wanted: Intent, settings: Mapping[str, Any],
          clock: Clock = utcnow) -> tuple[Record | None, Record | None]:
    """Make `wanted` the store's recorded intent, held by this delivery for the lease.

    (the record as held, None) when claimed; (None, the newer record) when the event is
    stale. RETRY_LATER while another delivery holds the record. Two
    deliveries that race both write against the resourceVersion they read: one wins, the
    other reads again and is judged against the winner.
    """
    platform_ns = settings["PLATFORM_NAMESPACE"]
    # A create is most often a new store's first event, which finds no record (judged
    # APPLY): it creates first, one call, and reads only on 409. A delete finds its create's.
    create_first = wanted.action == intent.CREATE
    for attempt in range(CLAIM_ATTEMPTS + create_first):
        obj, record = (None, None) if create_first and not attempt else read(
            kube, store, platform_ns)
        now = clock()
        verdict = intent.judge(record, wanted, now)
        if verdict is Verdict.STALE:
            return None, record
        if verdict is Verdict.BUSY:
            raise PlatformError(Kind.RETRY_LATER, "store_busy",
                                f"another request for store {store} is being applied; retry")
        body = intent.record_object(
            store, wanted, platform_ns, now,
            lease_until=intent.lease_end(now, float(settings["INTENT_LEASE_SECONDS"])),
            expires=True, previous=record,
            resource_version=(obj.get("metadata") or {}).get("resourceVersion") if obj else None)
        stored = kube.create_or_keep(body) if obj is None else _replace_unless_changed(kube, body)
        if stored is not None:
            return intent.read_record(stored), None
    raise PlatformError(Kind.RETRY_LATER, CONFLICT,
                        f"the intent record of store {store} kept changing; retry")


def release(kube: Kube, store: str, held: Record, settings: Mapping[str, Any], *,
            applied: bool, clock: Clock = utcnow) -> None:
    """Give the record back (lease cleared). An applied create keeps its store standing, so
    its record no longer expires; a delete, or a create still to apply, does. Best effort:
    a record someone else changed meanwhile is theirs, and a lease ends by itself.
    """
    expires = not (applied and held.intent.action == intent.CREATE)
    body = intent.record_object(store, held.intent, settings["PLATFORM_NAMESPACE"], clock(),
                                lease_until=None, expires=expires, previous=held,
                                resource_version=held.resource_version)
    try:
        if _replace_unless_changed(kube, body) is None:
            log.warning("intent record of %s changed while held; left as it is", store)
    except PlatformError as err:
        log.warning("could not release the intent record of %s: %s", store, err.message)


def _replace_unless_changed(kube: Kube, body: Obj) -> Obj | None:
    """Write the record at the version it was read at; None when it changed (or went)
    meanwhile: the caller reads it again."""
    try:
        return kube.replace(body)
    except PlatformError as err:
        if err.code == CONFLICT:
            return None
        raise


class Leased:
    """The Kubernetes verbs, refused once the lease is too close to its end for a call to
    finish inside it: the holder never acts after another delivery may have taken over.
    """

    def __init__(self, kube: Kube, safe_until: datetime, clock: Clock) -> None:
        self._kube, self._safe_until, self._clock = kube, safe_until, clock

    def __getattr__(self, name: str) -> Any:
        verb = getattr(self._kube, name)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._clock() >= self._safe_until:
                raise PlatformError(Kind.RETRY_LATER, "lease_expired",
                                    "this request took longer than its lease; retry")
            return verb(*args, **kwargs)

        return guarded


def latest_only(kube: Kube, store: str, wanted: Intent, settings: Mapping[str, Any],
                apply: Apply, clock: Clock = utcnow) -> Outcome:
    """Apply the intent only if it is the store's latest; a stale event changes nothing."""
    intent.check_clock(wanted, clock(), float(settings["MAX_CLOCK_SKEW_SECONDS"]))
    held, newer = claim(kube, store, wanted, settings, clock)
    if held is None:
        latest = newer.intent.describe() if newer else "unknown"
        return Outcome(None, note=f"stale {wanted.describe()} ignored; latest intent: {latest}")
    # A call may take up to two timeouts (connect, read): none starts that close to the end.
    margin = 2 * float(settings["KUBE_TIMEOUT"]) + 1
    safe_until = intent.lease_end(held.lease_until or clock(), -margin)
    applied = False
    try:
        outcome = apply(Leased(kube, safe_until, clock))  # type: ignore[arg-type]
        applied = True
        return outcome
    finally:
        release(kube, store, held, settings, applied=applied, clock=clock)


def sweep(kube: Kube, settings: Mapping[str, Any], clock: Clock = utcnow) -> list[str]:
    """Remove expired records whose store is gone; the names removed. Best effort."""
    platform_ns, ttl = settings["PLATFORM_NAMESPACE"], float(settings["INTENT_TTL_SECONDS"])
    removed: list[str] = []
    try:
        candidates = kube.list_items("ConfigMap", platform_ns, labels=intent.EXPIRING_SELECTOR)
        now = clock()
        for obj in candidates:
            record = intent.read_record(obj)
            store = (obj["metadata"].get("labels") or {}).get(contract.LABEL_STORE, "")
            if record is None or not store or not intent.sweepable(record, now, ttl):
                continue
            namespace = kube.read_or_none("Namespace", store)
            if namespace is not None and contract.manages(namespace):
                continue  # a delete still under way (or failed): keep what it said
            if kube.delete_if_present("ConfigMap", obj["metadata"]["name"], platform_ns,
                                      resource_version=record.resource_version):
                removed.append(obj["metadata"]["name"])  # else: changed since listed, kept
            if len(removed) >= SWEEP_LIMIT:
                break
    except PlatformError as err:
        log.warning("intent sweep stopped: %s", err.message)
    if removed:
        log.info("swept expired intent records: %s", ", ".join(removed))
    return removed
