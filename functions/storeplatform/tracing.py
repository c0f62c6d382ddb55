"""W3C trace context (`traceparent`), carried as the CloudEvents distributed-tracing extension.

The gateway starts a trace (or continues the caller's `traceparent` header), every event it
publishes carries it, the Broker forwards extensions untouched, each function logs its trace
id and hands a child to the runner Job (env TRACEPARENT), whose own events carry it on.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from cloudevents.core.base import BaseCloudEvent

EXTENSION = "traceparent"  # the CloudEvents attribute (ce-traceparent in binary mode)
ENV = "TRACEPARENT"  # how the runner Job receives it
_HEADER = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class Trace:
    """One span of a trace: trace id (32 hex), span id (16 hex), flags (2 hex)."""

    trace_id: str
    span_id: str
    flags: str = "01"

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> Trace:
        """The next hop's span: same trace, new span id."""
        return Trace(self.trace_id, secrets.token_hex(8), self.flags)


def parse(value: object) -> Trace | None:
    """A valid traceparent value, or None (version ff, all-zero ids, bad shape)."""
    if not isinstance(value, str):
        return None
    match = _HEADER.fullmatch(value.strip().lower())
    if not match:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} \
            or set(span_id) == {"0"}:
        return None
    return Trace(trace_id, span_id, flags)


def start() -> Trace:
    """A new trace, sampled."""
    return Trace(secrets.token_hex(16), secrets.token_hex(8))


def continued(value: object) -> Trace:
    """A child of the given traceparent when it is valid, else a new trace."""
    parent = parse(value)
    return parent.child() if parent else start()


def of_event(event: BaseCloudEvent) -> Trace | None:
    """The trace an event carries, if any."""
    return parse(event.get_extension(EXTENSION))
