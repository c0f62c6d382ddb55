"""The gateway's two upstreams: the Broker, which takes create and delete events, and
list-stores, which answers a store.list event with the view.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from storeplatform import contract, metrics
from storeplatform.errors import Kind, PlatformError
from storeplatform.events import new_event, parse_event, read_token, send_event

log = logging.getLogger(__name__)


def publish(sink: str, event_type: str, store: str, data: dict[str, Any],
            timeout: float, token_file: str = "", traceparent: str | None = None) -> str:
    """Hand a store event to the Broker (with the OIDC token in token_file, if any, and the
    request's trace); its id. A refusal (3xx/4xx) is UPSTREAM_REJECTED."""
    event = new_event(event_type, contract.GATEWAY_SOURCE, store, data, traceparent)
    fields = {"event_id": event.get_id(), "event_type": event_type}
    try:
        status, body, _ = send_event(sink, event, timeout, read_token(token_file))
    except PlatformError as err:
        metrics.event_published(event_type, err.code)
        raise
    if status >= 300:
        metrics.event_published(event_type, "sink_rejected")
        log.warning("broker refused event %s: HTTP %s %s", event.get_id(), status, body[:200],
                    extra=fields)
        raise PlatformError(Kind.UPSTREAM_REJECTED, "sink_rejected",
                            f"event broker refused the event (HTTP {status})")
    metrics.event_published(event_type, "accepted")
    log.info("published %s %s id=%s", event_type, store, event.get_id(), extra=fields)
    return event.get_id()


def list_view(list_url: str, timeout: float, token_file: str = "") -> bytes:
    """The data of list-stores' answer to a store.list event (sent with the OIDC token in
    token_file, if any), as the JSON it came in: read from memory there, passed on here
    without being decoded and encoded again."""
    event = new_event(contract.LIST, contract.GATEWAY_SOURCE, None, {})
    token = read_token(token_file)
    try:
        status, body, headers = send_event(list_url, event, timeout, token)
    except PlatformError as err:  # its words are about the Broker; this is list-stores
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            "list-stores is unreachable or failing, so the store list cannot "
                            "be read right now; stores are unaffected, try again") from err
    if status >= 300:
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            f"list-stores answered HTTP {status}")
    lowered = {key.lower(): value for key, value in headers.items()}
    if (lowered.get("ce-type") == contract.LIST_RESULT
            and lowered.get("content-type", "").split(";")[0].strip() == "application/json"):
        return body  # binary mode: the body is the data
    answer = parse_event(headers, body)
    if answer.get_type() != contract.LIST_RESULT:
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            f"list-stores answered a {answer.get_type()} event")
    return json.dumps(answer.get_data()).encode()


def reveal_admin_password(list_url: str, store: str, reset_id: str, timeout: float,
                          token_file: str = "", traceparent: str | None = None
                          ) -> dict[str, Any]:
    """list-stores' answer to an admin-password reveal: {"state", ...}, the password at most
    once. Sent straight to list-stores (with the OIDC token in token_file, if any), never
    through the Broker (nothing stores it)."""
    event = new_event(contract.REVEAL_ADMIN_PASSWORD, contract.GATEWAY_SOURCE, store,
                      {"name": store, "id": reset_id}, traceparent)
    status, body, headers = send_event(list_url.rstrip("/") + "/admin-password", event,
                                       timeout, read_token(token_file))
    if status >= 300:
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            f"list-stores answered HTTP {status}")
    data = parse_event(headers, body).get_data()
    if not isinstance(data, dict):
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            "list-stores answered without data")
    return data
