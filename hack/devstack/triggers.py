"""The Brokers and Triggers in knative/, as data: filters, subscribers and delivery policy.

`make dev`'s event router (devstack.broker) reads the same manifests `make up` applies, so
the local routes and retry policy cannot drift from the cluster's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EVENTING_API = "eventing.knative.dev/v1"
SERVING_API = "serving.knative.dev/v1"

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS_PER = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


class ManifestError(ValueError):
    """A Broker or Trigger in knative/ that the router cannot follow; the message says which."""


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration as Knative uses them (`PT1S`, `PT0.5S`, `PT1M30S`)."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ManifestError(f"not an ISO 8601 duration: {text!r}")
    return sum(float(value) * _SECONDS_PER[unit]
               for unit, value in match.groupdict().items() if value)


@dataclass(frozen=True)
class Destination:
    """A Knative Destination: a Service reference with an optional path, or an absolute URI."""

    service: str | None = None
    uri: str | None = None

    def describe(self) -> str:
        if self.service:
            return f"Service {self.service}{self.uri or ''}"
        return str(self.uri)


@dataclass(frozen=True)
class Delivery:
    """A DeliverySpec: how often and how patiently an event is retried, and where it ends."""

    retry: int = 0
    backoff_policy: str | None = None
    backoff_delay: float = 0.0
    timeout: float | None = None
    dead_letter: Destination | None = None
    format: str | None = None

    def backoff(self, retry_index: int) -> float:
        """Seconds to wait before retry number retry_index + 1 (Knative: delay * 2^index)."""
        if self.backoff_policy == "exponential":
            return self.backoff_delay * 2 ** retry_index
        if self.backoff_policy == "linear":
            return self.backoff_delay * retry_index
        return 0.0


@dataclass(frozen=True)
class Trigger:
    """One route: the events a filter lets through go to the subscriber, by the policy."""

    name: str
    namespace: str
    broker: str
    subscriber: Destination
    delivery: Delivery
    attributes: Mapping[str, str] = field(default_factory=dict)
    filters: tuple[Mapping[str, Any], ...] = ()

    def matches(self, event_attributes: Mapping[str, Any]) -> bool:
        """True when the event passes this Trigger's filter (`filters` wins over `filter`)."""
        attrs = {k: "" if v is None else str(v) for k, v in event_attributes.items()}
        if self.filters:
            return all(_dialect_matches(f, attrs) for f in self.filters)
        # An empty value matches anything (Knative's historical "Any").
        return all(value == "" or attrs.get(key) == value
                   for key, value in self.attributes.items())


def _dialect_matches(expression: Mapping[str, Any], attrs: Mapping[str, str]) -> bool:
    """The SubscriptionsAPI filter dialects, except CESQL (rejected when loading)."""
    if "all" in expression:
        return all(_dialect_matches(sub, attrs) for sub in expression["all"])
    if "any" in expression:
        return any(_dialect_matches(sub, attrs) for sub in expression["any"])
    if "not" in expression:
        return not _dialect_matches(expression["not"], attrs)
    checks = {"exact": lambda have, want: have == want,
              "prefix": lambda have, want: have.startswith(want),
              "suffix": lambda have, want: have.endswith(want)}
    for dialect, check in checks.items():
        if dialect in expression:
            return all(key in attrs and check(attrs[key], str(want))
                       for key, want in expression[dialect].items())
    raise ManifestError(f"unsupported filter expression: {dict(expression)}")


def _check_dialects(expression: Mapping[str, Any], where: str) -> None:
    known = {"all", "any", "not", "exact", "prefix", "suffix"}
    if not isinstance(expression, Mapping) or len(expression) != 1 or not set(expression) <= known:
        raise ManifestError(f"{where}: filter {expression!r} is not supported by the local "
                            f"router (supported: {', '.join(sorted(known))})")
    (dialect, body), = expression.items()
    if dialect in ("all", "any"):
        for sub in body:
            _check_dialects(sub, where)
    elif dialect == "not":
        _check_dialects(body, where)


def parse_destination(spec: Mapping[str, Any] | None, where: str) -> Destination | None:
    """A Destination from `{ref: {...}, uri: ...}`; only Knative Services can be referenced."""
    if not spec:
        return None
    ref = spec.get("ref")
    uri = spec.get("uri")
    if ref:
        if ref.get("kind") != "Service" or ref.get("apiVersion") != SERVING_API:
            raise ManifestError(f"{where}: only {SERVING_API} Service refs are supported, "
                                f"got {ref.get('apiVersion')} {ref.get('kind')}")
        return Destination(service=ref["name"], uri=uri or None)
    if not uri:
        raise ManifestError(f"{where}: destination needs a ref or a uri")
    return Destination(uri=uri)


def parse_delivery(spec: Mapping[str, Any] | None, where: str) -> Delivery:
    """A Delivery from a DeliverySpec; absent fields mean no retry, no dead-letter sink."""
    spec = spec or {}
    policy = spec.get("backoffPolicy")
    if policy not in (None, "exponential", "linear"):
        raise ManifestError(f"{where}: backoffPolicy must be exponential or linear, got {policy}")
    timeout = spec.get("timeout")
    return Delivery(
        retry=int(spec.get("retry", 0)),
        backoff_policy=policy,
        backoff_delay=parse_duration(spec["backoffDelay"]) if spec.get("backoffDelay") else 0.0,
        timeout=parse_duration(timeout) if timeout else None,
        dead_letter=parse_destination(spec.get("deadLetterSink"), f"{where} deadLetterSink"),
        format=spec.get("format"),
    )


def read_documents(knative_dir: Path | str) -> list[tuple[str, dict[str, Any]]]:
    """Every YAML document in the directory, in apply (file name) order, with its file name."""
    docs = []
    for path in sorted(Path(knative_dir).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def parse_trigger(doc: Mapping[str, Any], broker_delivery: Mapping[tuple[str, str], Delivery],
                  where: str) -> Trigger:
    """A Trigger; without its own delivery it uses its Broker's (as Knative does)."""
    meta, spec = doc["metadata"], doc.get("spec") or {}
    namespace = meta.get("namespace", "default")
    broker = spec.get("broker", "default")
    filters = tuple(spec.get("filters") or ())
    for expression in filters:
        _check_dialects(expression, where)
    attributes = {str(k): "" if v is None else str(v)
                  for k, v in ((spec.get("filter") or {}).get("attributes") or {}).items()}
    subscriber = parse_destination(spec.get("subscriber"), f"{where} subscriber")
    if subscriber is None:
        raise ManifestError(f"{where}: a Trigger needs a subscriber")
    if spec.get("delivery"):
        delivery = parse_delivery(spec["delivery"], f"{where} delivery")
    else:
        delivery = broker_delivery.get((namespace, broker), Delivery())
    return Trigger(name=meta["name"], namespace=namespace, broker=broker,
                   subscriber=subscriber, delivery=delivery,
                   attributes=attributes, filters=filters)


def load_brokers(knative_dir: Path | str) -> dict[tuple[str, str], Delivery]:
    """(namespace, name) of every Broker in the manifests, with its default delivery."""
    brokers = {}
    for file_name, doc in read_documents(knative_dir):
        if doc.get("kind") == "Broker" and doc.get("apiVersion") == EVENTING_API:
            meta = doc["metadata"]
            where = f"{file_name}: Broker {meta['name']}"
            key = (meta.get("namespace", "default"), meta["name"])
            brokers[key] = parse_delivery((doc.get("spec") or {}).get("delivery"), where)
    return brokers


def load_triggers(knative_dir: Path | str) -> list[Trigger]:
    """Every Trigger in the manifests, in apply order. Raises ManifestError on what it can't do."""
    brokers = load_brokers(knative_dir)
    triggers = []
    for file_name, doc in read_documents(knative_dir):
        if doc.get("kind") == "Trigger" and doc.get("apiVersion") == EVENTING_API:
            triggers.append(parse_trigger(doc, brokers,
                                          f"{file_name}: Trigger {doc['metadata']['name']}"))
    return triggers
