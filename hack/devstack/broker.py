"""`make dev`'s stand-in for the Knative Broker: routes CloudEvents as knative/ says.

POST a CloudEvent (binary or structured mode) to /<namespace>/<broker>, the path of the
Broker ingress in a cluster: it is answered 202 at once, then delivered in the background
to the subscriber of every Trigger whose filter it passes, in binary mode, with exactly that
Trigger's delivery policy (retry count, exponential/linear backoff, per-attempt timeout).
Retried like Knative retries: 5xx, 404, 408, 409, 429, timeouts and connection errors; other
answers are final. An event that still fails goes to the dead-letter sink with Knative's
knativeerrorcode / knativeerrordest / knativeerrordata extensions. A CloudEvent in a
subscriber's 2xx reply goes back into the Broker, as in Knative.

Knative Services are addressed by name through BROKER_SUBSCRIBERS
("create-store=http://127.0.0.1:8082,..."); only loopback URLs are accepted.

    gunicorn 'devstack.broker:create_app()'     (what `make dev` runs)
    python -m devstack.broker --port 8081 --subscriber create-store=http://127.0.0.1:8082
"""

from __future__ import annotations

import argparse
import base64
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent
from flask import Flask, jsonify, request

from devstack.triggers import (
    Delivery,
    Destination,
    ManifestError,
    Trigger,
    load_brokers,
    load_triggers,
)
from storeplatform import config as cfg

log = logging.getLogger("devstack.broker")

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, Any] = {
    "KNATIVE_DIR": str(REPO_ROOT / "knative"),
    # Knative Service name -> local base URL: "name=url,name=url" or a mapping.
    "BROKER_SUBSCRIBERS": cfg.REQUIRED,
    # Seconds; replaces every backoffDelay (tests use a tiny one). 0 = the manifests' own.
    "BROKER_BACKOFF_DELAY": 0.0,
    # Per-attempt timeout for a Trigger without delivery.timeout (seconds).
    "BROKER_TIMEOUT": 30.0,
    "LOG_LEVEL": "INFO",
}
STRUCTURED = "application/cloudevents+json"
ERROR_DATA_MAX = 1024  # Knative truncates the base64 of the failed reply to this
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
RETRYABLE_STATUS = frozenset({404, 408, 409, 429})
MAX_REPLY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt gave: a status (None when nothing answered) and the body."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def is_retryable(outcome: Outcome) -> bool:
    """Knative's SelectiveRetry: no answer, 5xx, 404, 408, 409 and 429 are worth retrying."""
    if outcome.status is None:
        return True
    return outcome.status >= 500 or outcome.status in RETRYABLE_STATUS


def parse_subscribers(value: str | Mapping[str, str]) -> dict[str, str]:
    """{"create-store": "http://127.0.0.1:8082", ...} from a mapping or "name=url,name=url"."""
    if isinstance(value, Mapping):
        pairs = dict(value)
    else:
        pairs = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, url = item.partition("=")
            if not sep or not name.strip() or not url.strip():
                raise cfg.ConfigError(f"BROKER_SUBSCRIBERS: expected name=url, got {item!r}")
            pairs[name.strip()] = url.strip()
    for name, url in pairs.items():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
            raise cfg.ConfigError(f"BROKER_SUBSCRIBERS: {name} must be an http URL on "
                                  f"127.0.0.1/localhost, got {url!r}")
    return pairs


def resolve(destination: Destination, subscribers: Mapping[str, str]) -> str:
    """The local URL of a Destination: the Service's URL plus its relative uri, if any."""
    if destination.service is None:
        url = str(destination.uri)
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            raise cfg.ConfigError(f"{url} is not on 127.0.0.1; the local router only delivers "
                                  "to loopback (reference a Service instead)")
        return url
    try:
        base = subscribers[destination.service]
    except KeyError:
        raise cfg.ConfigError(
            f"no local URL for Knative Service {destination.service!r}: add "
            f"{destination.service}=http://127.0.0.1:<port> to BROKER_SUBSCRIBERS") from None
    if not destination.uri:
        return base
    return urljoin(base.rstrip("/") + "/", destination.uri.lstrip("/"))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer (a failed, final one, as for Knative), not something to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_event(url: str, event: BaseCloudEvent, timeout: float) -> Outcome:
    """POST the event in binary mode (Prefer: reply, as the Broker does); never raises."""
    message = to_binary_event(event)
    headers = dict(message.headers) | {"Prefer": "reply"}
    req = urllib.request.Request(url, data=message.body, headers=headers,  # noqa: S310
                                 method="POST")
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return Outcome(response.status, response.read(MAX_REPLY_BYTES),
                           dict(response.headers.items()))
    except urllib.error.HTTPError as err:
        return Outcome(err.code, err.read(MAX_REPLY_BYTES), dict(err.headers.items()))
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        return Outcome(None, error=str(getattr(err, "reason", err)))


def with_error_extensions(event: BaseCloudEvent, destination: str,
                          outcome: Outcome) -> CloudEvent:
    """The event as Knative sends it to a dead-letter sink, carrying why it failed."""
    data = base64.b64encode(outcome.body).decode("ascii")[:ERROR_DATA_MAX]
    attributes = dict(event.get_attributes())
    attributes |= {"knativeerrordest": destination,
                   "knativeerrorcode": str(outcome.status if outcome.status is not None else -1),
                   "knativeerrordata": data}
    return CloudEvent(attributes=attributes, data=event.get_data())


def reply_event(outcome: Outcome) -> BaseCloudEvent | None:
    """The CloudEvent a subscriber answered with, if its 2xx reply carries one."""
    headers = {k.lower(): v for k, v in (outcome.headers or {}).items()}
    structured = headers.get("content-type", "").split(";")[0].strip() == STRUCTURED
    if not outcome.ok or not ("ce-specversion" in headers or structured):
        return None
    try:
        return from_http_event(HTTPMessage(headers=headers, body=outcome.body))
    except (BaseCloudEventException, ValueError, TypeError, KeyError) as err:
        log.warning("ignoring a malformed reply event: %s", err)
        return None


class Router:
    """Matches events against the Triggers and delivers them on background threads."""

    def __init__(self, triggers: list[Trigger], brokers: set[tuple[str, str]],
                 subscribers: Mapping[str, str], backoff_delay: float = 0.0,
                 default_timeout: float = 30.0) -> None:
        self.triggers = triggers
        self.brokers = brokers
        self.subscribers = dict(subscribers)
        self.backoff_delay = backoff_delay
        self.default_timeout = default_timeout
        self._stopping = threading.Event()
        self._active: set[threading.Thread] = set()
        self._lock = threading.Lock()
        for trigger in triggers:  # fail at start-up, not on the first event
            resolve(trigger.subscriber, self.subscribers)
            if trigger.delivery.dead_letter:
                resolve(trigger.delivery.dead_letter, self.subscribers)
            if (trigger.namespace, trigger.broker) not in brokers:
                log.warning("Trigger %s names Broker %s/%s, which knative/ does not define",
                            trigger.name, trigger.namespace, trigger.broker)

    def policy(self, trigger: Trigger) -> Delivery:
        """The Trigger's delivery, with the test override of backoffDelay applied."""
        delivery = trigger.delivery
        if self.backoff_delay:
            delivery = Delivery(delivery.retry, delivery.backoff_policy, self.backoff_delay,
                                delivery.timeout, delivery.dead_letter, delivery.format)
        return delivery

    def ingest(self, namespace: str, broker: str, event: BaseCloudEvent) -> list[str]:
        """Start delivering to every matching Trigger; return their names (maybe none)."""
        event = self._arrived(event)
        attributes = event.get_attributes()
        matched = [t for t in self.triggers
                   if (t.namespace, t.broker) == (namespace, broker) and t.matches(attributes)]
        if not matched:
            log.info("event %s %s subject=%s matches no Trigger; dropped", event.get_id(),
                     event.get_type(), event.get_subject())
        for trigger in matched:
            self._spawn(trigger, event)
        return [t.name for t in matched]

    def _spawn(self, trigger: Trigger, event: BaseCloudEvent) -> None:
        thread = threading.Thread(target=self._run, args=(trigger, event), daemon=True,
                                  name=f"deliver-{trigger.name}-{event.get_id()}")
        with self._lock:
            self._active.add(thread)
        thread.start()

    def _run(self, trigger: Trigger, event: BaseCloudEvent) -> None:
        try:
            self.deliver(trigger, event)
        except Exception:
            log.exception("delivery of event %s to Trigger %s failed", event.get_id(),
                          trigger.name)
        finally:
            with self._lock:
                self._active.discard(threading.current_thread())

    def attempt_all(self, url: str, event: BaseCloudEvent, delivery: Delivery,
                    label: str) -> Outcome:
        """Send until success, a final answer or the retries run out; the last outcome."""
        timeout = delivery.timeout or self.default_timeout
        outcome = Outcome(None, error="not sent")
        for attempt in range(delivery.retry + 1):
            if attempt:
                delay = delivery.backoff(attempt - 1)
                if self._stopping.wait(delay):
                    return Outcome(None, error="router stopped")
            outcome = post_event(url, event, timeout)
            log.info("event %s -> %s attempt %d/%d: %s", event.get_id(), label, attempt + 1,
                     delivery.retry + 1, outcome.status or outcome.error)
            if outcome.ok or not is_retryable(outcome):
                break
        return outcome

    def deliver(self, trigger: Trigger, event: BaseCloudEvent) -> Outcome:
        """One Trigger's delivery of one event, ending at the subscriber or dead-letter sink."""
        delivery = self.policy(trigger)
        url = resolve(trigger.subscriber, self.subscribers)
        outcome = self.attempt_all(url, event, delivery, f"Trigger {trigger.name}")
        if outcome.ok:
            reply = reply_event(outcome)
            if reply is not None and not self._stopping.is_set():
                log.info("event %s: reply %s %s goes back into the Broker", event.get_id(),
                         reply.get_type(), reply.get_id())
                self.ingest(trigger.namespace, trigger.broker, reply)
            return outcome
        if self._stopping.is_set():
            log.warning("event %s: router stopping, delivery to Trigger %s abandoned",
                        event.get_id(), trigger.name)
            return outcome
        if delivery.dead_letter is None:
            log.error("event %s undeliverable to Trigger %s (%s) and no deadLetterSink: lost",
                      event.get_id(), trigger.name, outcome.status or outcome.error)
            return outcome
        sink = resolve(delivery.dead_letter, self.subscribers)
        letter = with_error_extensions(event, url, outcome)
        dead = self.attempt_all(sink, letter, delivery, f"deadLetterSink of {trigger.name}")
        if not dead.ok:
            log.error("event %s: dead-letter sink %s failed too (%s): lost", event.get_id(),
                      sink, dead.status or dead.error)
        return outcome

    @staticmethod
    def _arrived(event: BaseCloudEvent) -> BaseCloudEvent:
        """Stamp knativearrivaltime, as the Broker ingress does."""
        attributes = dict(event.get_attributes())
        attributes.setdefault("knativearrivaltime",
                              datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        return CloudEvent(attributes=attributes, data=event.get_data())

    def join(self, timeout: float) -> bool:
        """Wait for every delivery in flight; True when none is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                threads = list(self._active)
            if not threads:
                return True
            threads[0].join(min(0.05, max(0.0, deadline - time.monotonic())))
        with self._lock:
            return not self._active

    def stop(self) -> None:
        """Abandon pending retries (they are logged as stopped)."""
        self._stopping.set()


def parse_request() -> BaseCloudEvent:
    """The request's CloudEvent, or raise ValueError saying why it isn't one."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    is_binary = "ce-specversion" in headers
    is_structured = headers.get("content-type", "").split(";")[0].strip() == STRUCTURED
    if not (is_binary or is_structured):
        raise ValueError("not a CloudEvent: send ce-* headers (binary mode) or "
                         f"Content-Type: {STRUCTURED} (structured mode)")
    try:
        return from_http_event(HTTPMessage(headers=headers, body=request.get_data()))
    except (BaseCloudEventException, ValueError, TypeError, KeyError) as err:
        raise ValueError(f"invalid CloudEvent: {err}") from err


def error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The router as a Flask app; configuration from overrides, else the environment."""
    settings = cfg.load(SETTINGS, overrides)
    cfg.setup_logging(settings["LOG_LEVEL"])
    knative_dir = settings["KNATIVE_DIR"]
    try:
        triggers = load_triggers(knative_dir)
        brokers = set(load_brokers(knative_dir))
    except (ManifestError, OSError) as err:
        raise cfg.ConfigError(f"KNATIVE_DIR {knative_dir}: {err}") from err
    router = Router(triggers, brokers, parse_subscribers(settings["BROKER_SUBSCRIBERS"]),
                    backoff_delay=float(settings["BROKER_BACKOFF_DELAY"]),
                    default_timeout=float(settings["BROKER_TIMEOUT"]))
    for trigger in triggers:
        log.info("Trigger %s: %s -> %s", trigger.name,
                 dict(trigger.attributes) or list(trigger.filters) or "everything",
                 resolve(trigger.subscriber, router.subscribers))

    app = Flask("devstack.broker")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.extensions["router"] = router

    @app.get("/health")
    def health():
        """Liveness."""
        return jsonify({"status": "ok"})

    @app.post("/<namespace>/<broker>")
    def ingress(namespace: str, broker: str):
        """Accept one CloudEvent for a Broker of knative/ and route it in the background."""
        if (namespace, broker) not in router.brokers:
            return error(404, "broker_not_found", f"no Broker {namespace}/{broker} in knative/")
        try:
            event = parse_request()
        except ValueError as err:
            return error(400, "invalid_cloudevent", str(err))
        triggers = router.ingest(namespace, broker, event)
        log.info("event %s %s subject=%s accepted for %s", event.get_id(), event.get_type(),
                 event.get_subject(), ", ".join(triggers) or "no Trigger")
        return "", 202

    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the router on 127.0.0.1 until SIGINT/SIGTERM."""
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(prog="python -m devstack.broker",
                                     description="local stand-in for the Knative Broker")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--knative-dir", default=SETTINGS["KNATIVE_DIR"])
    parser.add_argument("--subscriber", action="append", default=[], metavar="NAME=URL",
                        help="local URL of a Knative Service (repeat per Service)")
    args = parser.parse_args(argv)
    app = create_app({"KNATIVE_DIR": args.knative_dir,
                      "BROKER_SUBSCRIBERS": ",".join(args.subscriber)})
    server = make_server("127.0.0.1", args.port, app, threaded=True)

    def on_signal(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("broker: http://127.0.0.1:%d", server.server_port)
    server.serve_forever()
    app.extensions["router"].stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
