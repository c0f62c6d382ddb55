"""Latest intent wins: a store's last accepted create or delete, and how an event compares.

Pure: an Intent from an event, the record that keeps it (a ConfigMap in the platform
namespace, docs/contract.md "Ordering"), and the verdicts on a delivered event. The calls
to Kubernetes that read and write the record live in lifecycle/intents.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from cloudevents.core.base import BaseCloudEvent

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError

Obj = dict[str, Any]

CREATE, DELETE = "create", "delete"
RECORD_PREFIX = "intent-"
COMPONENT = "intent"
# On records that keep no store standing (a delete, or a create not applied yet): the sweep
# may remove them once they are older than the TTL and no store of that name stands.
LABEL_EXPIRES = "storeplatform.io/intent-expires"
INTENT_SELECTOR = f"{contract.LABEL_COMPONENT}={COMPONENT}"
EXPIRING_SELECTOR = f"{INTENT_SELECTOR},{LABEL_EXPIRES}=true"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Intent:
    """What a person asked for, when: one create or delete event."""

    action: str  # CREATE or DELETE
    time: datetime  # the event's time (aware, UTC)
    event_id: str
    source: str

    def key(self) -> tuple[datetime, str]:
        """The order of intents: the later time wins; on equal times the greater event id."""
        return (self.time, self.event_id)

    def describe(self) -> str:
        return f"{self.action} at {stamp(self.time)} (event {self.event_id})"


@dataclass(frozen=True)
class Record:
    """A store's intent record as read back: the intent, and whether a delivery holds it."""

    intent: Intent
    lease_until: datetime | None  # a delivery is applying the intent until then
    updated_at: datetime
    resource_version: str
    expires: bool  # keeps no store standing (LABEL_EXPIRES)
    previous: str = ""  # the intent this one superseded, as JSON


class Verdict(Enum):
    """What a delivered event does next."""

    APPLY = "apply"  # the latest intent (or the same one again): claim it and apply it
    STALE = "stale"  # older than the recorded intent: acknowledge, change nothing
    BUSY = "busy"  # another delivery is applying an intent right now: retry later


def stamp(time: datetime) -> str:
    """RFC 3339 in UTC with microseconds: what the record keeps, sortable as text."""
    return time.astimezone(UTC).strftime(TIME_FORMAT)


def parse_stamp(text: str | None) -> datetime | None:
    """A stamp back to a time; None for none (or one this module did not write)."""
    try:
        return datetime.strptime(text or "", TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def of_event(action: str, event: BaseCloudEvent, received_at: datetime) -> Intent:
    """The event's intent. A producer that sends no `time` gets the receive time (the
    CloudEvents SDK fills it in as it parses the request, which is when it was received).
    """
    time = event.get_time() or received_at
    if time.tzinfo is None:  # RFC 3339 always has an offset; be safe with odd producers
        time = time.replace(tzinfo=UTC)
    return Intent(action, time.astimezone(UTC), str(event.get_id()),
                  str(event.get_source() or ""))


def check_clock(intent: Intent, received_at: datetime, max_future_seconds: float) -> None:
    """Refuse an event dated further in the future than the allowed skew: it would shadow
    every intent sent after it until its time comes (INVALID: the Broker dead-letters it).
    """
    ahead = (intent.time - received_at).total_seconds()
    if ahead > max_future_seconds:
        raise PlatformError(Kind.INVALID, "event_time_in_future",
                            f"event time {stamp(intent.time)} is {ahead:.0f} s ahead of this "
                            f"function's clock (at most {max_future_seconds:.0f} s allowed); "
                            "check the producer's clock")


def judge(record: Record | None, intent: Intent, now: datetime) -> Verdict:
    """Stale when older than the record; busy while another delivery holds the record."""
    if record is None:
        return Verdict.APPLY
    if intent.key() < record.intent.key():
        return Verdict.STALE
    if record.lease_until is not None and record.lease_until > now:
        return Verdict.BUSY
    return Verdict.APPLY


def record_name(store: str) -> str:
    return RECORD_PREFIX + store


def record_object(store: str, intent: Intent, platform_namespace: str, now: datetime, *,
                  lease_until: datetime | None, expires: bool,
                  previous: Record | None = None, resource_version: str | None = None) -> Obj:
    """The ConfigMap intent-<store> holding the store's latest intent (and the one before)."""
    labels = contract.store_labels(store) | {contract.LABEL_COMPONENT: COMPONENT}
    if expires:
        labels[LABEL_EXPIRES] = "true"
    metadata: Obj = {"name": record_name(store), "namespace": platform_namespace,
                     "labels": labels}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    data = {"action": intent.action, "eventTime": stamp(intent.time),
            "eventId": intent.event_id, "source": intent.source,
            "leaseUntil": stamp(lease_until) if lease_until else "", "updatedAt": stamp(now)}
    if previous is not None and previous.intent.event_id != intent.event_id:
        # What this intent superseded (a delete a create follows, say), for people reading it.
        data["previous"] = json.dumps({"action": previous.intent.action,
                                       "eventTime": stamp(previous.intent.time),
                                       "eventId": previous.intent.event_id})
    elif previous is not None and previous.previous:
        data["previous"] = previous.previous
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def read_record(obj: Mapping[str, Any] | None) -> Record | None:
    """The record from its ConfigMap; None for no ConfigMap (or one that is not a record)."""
    if obj is None:
        return None
    data, meta = obj.get("data") or {}, obj.get("metadata") or {}
    time = parse_stamp(data.get("eventTime"))
    if data.get("action") not in (CREATE, DELETE) or time is None:
        return None
    intent = Intent(data["action"], time, data.get("eventId", ""), data.get("source", ""))
    return Record(intent, parse_stamp(data.get("leaseUntil")),
                  parse_stamp(data.get("updatedAt")) or time,
                  str(meta.get("resourceVersion") or ""),
                  (meta.get("labels") or {}).get(LABEL_EXPIRES) == "true",
                  data.get("previous", ""))


def lease_end(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)


def sweepable(record: Record, now: datetime, ttl_seconds: float) -> bool:
    """A record that keeps no store standing, held by no delivery, older than the TTL."""
    held = record.lease_until is not None and record.lease_until > now
    return record.expires and not held and (now - record.updated_at).total_seconds() > ttl_seconds
