"""The platform's one domain error: a kind (what the caller should do next), a code, a message.

The core raises it; only the HTTP layer (app.py) turns a kind into a status.
"""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    """What went wrong, in terms of what the caller (a person, the Broker) should do next."""

    INVALID = "invalid request"  # fix the request
    UNAUTHORIZED = "unauthorized"  # send a valid credential
    FORBIDDEN = "forbidden"  # a valid credential of a sender that may not do this
    UNSUPPORTED_MEDIA = "unsupported media type"  # send application/json
    LIMIT_REACHED = "limit reached"  # the platform holds as many stores as it may
    NOT_AVAILABLE = "engine not available"  # known, planned, not built yet
    CONFLICT = "not managed by the platform"  # a person must look; retrying cannot help
    RETRY_LATER = "retry later"  # the platform's own state says "not now"
    MISCONFIGURED = "misconfigured"  # the deployment is wrong (e.g. RBAC refused a call)
    UPSTREAM_UNAVAILABLE = "upstream unavailable"  # Kubernetes, the Broker or list-stores
    UPSTREAM_REJECTED = "upstream rejected"  # the Broker refused the event
    UPSTREAM_TIMEOUT = "upstream timed out"  # sent, no answer: it may still be applied


class PlatformError(Exception):
    """A failure with a kind, a machine-readable code and a message for people."""

    def __init__(self, kind: Kind, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
