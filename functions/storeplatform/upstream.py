"""The gateway's two upstreams: the Broker, which takes create and delete events, and
list-stores, which answers a store.list event with the view.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError
from storeplatform.events import new_event, parse_event, read_token, send_event

log = logging.getLogger(__name__)


def publish(sink: str, event_type: str, store: str, data: dict[str, Any],
            timeout: float, token_file: str = "") -> str:
    """Hand a store event to the Broker (with the OIDC token in token_file, if any); its id.
    A refusal (3xx/4xx) is UPSTREAM_REJECTED."""
    event = new_event(event_type, contract.GATEWAY_SOURCE, store, data)
    status, body, _ = send_event(sink, event, timeout, read_token(token_file))
    if status >= 300:
        log.warning("broker refused event %s: HTTP %s %s", event.get_id(), status, body[:200])
        raise PlatformError(Kind.UPSTREAM_REJECTED, "sink_rejected",
                            f"event broker refused the event (HTTP {status})")
    log.info("published %s %s id=%s", event_type, store, event.get_id())
    return event.get_id()


def list_view(list_url: str, timeout: float, token_file: str = "") -> bytes:
    """The data of list-stores' answer to a store.list event (sent with the OIDC token in
    token_file, if any), as the JSON it came in: read from memory there, passed on here
    without being decoded and encoded again."""
    event = new_event(contract.LIST, contract.GATEWAY_SOURCE, None, {})
    token = read_token(token_file)
    try:
        status, body, headers = send_event(list_url, event, timeout, token)
    except PlatformError as err:  # a read changes nothing: unreachable or slow, retry
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            f"list-stores did not answer ({err.__cause__ or err.message}); "
                            "retry") from err
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
