"""CloudEvents in and out: parse both HTTP content modes, build and send binary-mode events."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent

from storeplatform import tracing
from storeplatform.connections import NoAnswer, NotSent, Pool
from storeplatform.errors import Kind, PlatformError

log = logging.getLogger(__name__)

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# The process's kept-alive connections to the receivers it sends events to.
POOL = Pool()


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """True when the headers announce a CloudEvent in binary or structured mode."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "ce-specversion" in lowered:
        return True
    return lowered.get("content-type", "").split(";")[0].strip() == STRUCTURED_CONTENT_TYPE


def parse_event(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """Decode an HTTP request into a CloudEvent, or raise INVALID saying what is wrong."""
    if not is_cloudevent(headers):
        raise PlatformError(
            Kind.INVALID, "not_a_cloudevent",
            "request is not a CloudEvent: send ce-* headers (binary mode) or "
            f"Content-Type: {STRUCTURED_CONTENT_TYPE} (structured mode)",
        )
    if not _is_binary(headers):
        _check_structured(body)
    try:
        event = from_http_event(HTTPMessage(headers=dict(headers), body=body))
    except RecursionError as err:
        raise _too_deep() from err
    except (BaseCloudEventException, ValueError, TypeError, KeyError, AttributeError) as err:
        # The SDK's text names its internals: the sender gets a fixed message, the log the
        # detail.
        log.info("invalid CloudEvent: %s", err)
        raise PlatformError(Kind.INVALID, "invalid_cloudevent",
                            "invalid CloudEvent: a required attribute is missing or malformed "
                            "(specversion, id, source, type)") from err
    data = event.get_data()
    if isinstance(data, (bytes, str)) and data:
        # The JSON format falls back to raw bytes/str when the body is not valid JSON.
        raise PlatformError(Kind.INVALID, "invalid_data", "event data must be a JSON object")
    return event


def _is_binary(headers: Mapping[str, str]) -> bool:
    return any(key.lower() == "ce-specversion" for key, _ in headers.items())


def _too_deep() -> PlatformError:
    return PlatformError(Kind.INVALID, "invalid_json", "JSON is nested too deeply")


def _check_structured(body: bytes) -> None:
    """A structured-mode body must be one JSON object (the event), whatever it nests."""
    try:
        envelope = json.loads(body)
    except RecursionError as err:
        raise _too_deep() from err
    except (UnicodeDecodeError, ValueError) as err:
        raise PlatformError(Kind.INVALID, "invalid_cloudevent",
                            "structured CloudEvent is not valid JSON") from err
    if not isinstance(envelope, dict):
        raise PlatformError(Kind.INVALID, "invalid_cloudevent",
                            "a structured CloudEvent must be a JSON object")


def new_event(event_type: str, source: str, subject: str | None,
              data: dict[str, Any] | bytes, traceparent: str | None = None) -> CloudEvent:
    """A JSON CloudEvent with a fresh id and time (and the trace it belongs to, if given;
    bytes: data already encoded as JSON)."""
    attributes: dict[str, Any] = {
        "type": event_type,
        "source": source,
        "datacontenttype": "application/json",
    }
    if subject:
        attributes["subject"] = subject
    if traceparent:
        attributes[tracing.EXTENSION] = traceparent
    return CloudEvent(attributes=attributes, data=data)


def request_facts(event: BaseCloudEvent) -> dict[str, str]:
    """What a runner Job learns of the request that started it (manifests.REQUEST_FACTS):
    its event id, when it was asked for (the event's time, else now), the trace to continue
    (a child span)."""
    trace = tracing.of_event(event)
    time = event.get_time() or datetime.now(UTC)
    facts = {"EVENT_ID": event.get_id(),
             "REQUESTED_AT": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if trace is not None:
        facts[tracing.ENV] = trace.child().header()
    return facts


def event_response(event: BaseCloudEvent, status: int = 200) -> tuple[bytes, int, dict[str, str]]:
    """A Flask response tuple carrying the event in binary mode."""
    message = to_binary_event(event)
    return message.body, status, message.headers


def read_token(path: str) -> str | None:
    """The OIDC token in a file the kubelet keeps fresh (read on every send); None: no file
    configured. A configured file that cannot be read is MISCONFIGURED."""
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as err:
        log.error("cannot read the sender token %s: %s", path, err.strerror)
        raise PlatformError(Kind.MISCONFIGURED, "sender_token_missing",
                            "this service's event sender token is not readable") from err


def send_event(url: str, event: BaseCloudEvent, timeout: float, token: str | None = None,
               pool: Pool = POOL) -> tuple[int, bytes, dict[str, str]]:
    """POST the event in binary mode (with `Authorization: Bearer <token>` when given) over
    a kept-alive connection; return (status, body, headers) of any answer below 500.

    No connection, or the request not written: UPSTREAM_UNAVAILABLE, nothing was changed.
    A 5xx: UPSTREAM_UNAVAILABLE, try again. Sent, but no answer within `timeout`:
    UPSTREAM_TIMEOUT; Knative's in-memory channel answers only once the subscriber did, so
    the event may still be acted on.
    """
    message = to_binary_event(event)
    headers = dict(message.headers)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        answer = pool.post(url, message.body, headers, timeout)
    except NotSent as err:
        log.warning("event %s to %s not sent: %s", event.get_id(), url, err)
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "sink_unavailable",
                            "event receiver is unreachable; nothing was changed, try again",
                            ) from err
    except NoAnswer as err:
        log.warning("event %s to %s sent, no answer: %s", event.get_id(), url, err)
        raise PlatformError(Kind.UPSTREAM_TIMEOUT, "sink_timeout",
                            f"event receiver took the event but gave no answer ({err}); "
                            "the request may still be applied, and retrying it is safe",
                            ) from err
    if answer.status >= 500:
        log.warning("event %s to %s: HTTP %s", event.get_id(), url, answer.status)
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "sink_unavailable",
                            f"event receiver answered HTTP {answer.status}; try again")
    return answer.status, answer.body, answer.headers
