"""The platform contract in code: store names, engines, event types, labels (docs/contract.md)."""

from __future__ import annotations

import re
from typing import Any

from storeplatform.errors import ApiError

EVENT_PREFIX = "io.storeplatform.store."
CREATE = EVENT_PREFIX + "create"
DELETE = EVENT_PREFIX + "delete"
LIST = EVENT_PREFIX + "list"
READY = EVENT_PREFIX + "ready"
FAILED = EVENT_PREFIX + "failed"
DELETED = EVENT_PREFIX + "deleted"

NAME_PREFIX = "store-"
NAME_MAX_LENGTH = 40
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

ENGINES_AVAILABLE = ("woocommerce",)
ENGINES_PLANNED = ("medusa",)
DEFAULT_ENGINE = "woocommerce"

PLATFORM_NAMESPACE = "storeplatform"
MANAGED_BY = "storeplatform"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_STORE = "storeplatform.io/store"
LABEL_ENGINE = "storeplatform.io/engine"
LABEL_CREATED_AT = "storeplatform.io/created-at"
LABEL_ACTION = "storeplatform.io/action"
ANNOTATION_CREATED_AT = "storeplatform.io/created-at"
ANNOTATION_PHASE = "storeplatform.io/phase"
ANNOTATION_REASON = "storeplatform.io/reason"
ANNOTATION_EVENT_ID = "storeplatform.io/event-id"

RUNNER_COMPONENT = "helm-runner"
CREDENTIALS_SECRET = "store-credentials"  # noqa: S105 (a Secret name, not a password)
RUNNER_NAME = "storeplatform-runner"


def validate_store_name(name: Any) -> str:
    """Return the name if it is a valid store name, else raise a 400 ApiError saying why."""
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid_name", "store name is required")
    if not name.startswith(NAME_PREFIX):
        raise ApiError(400, "invalid_name", f"store name must start with '{NAME_PREFIX}'")
    if len(name) > NAME_MAX_LENGTH:
        raise ApiError(
            400, "invalid_name",
            f"store name must be at most {NAME_MAX_LENGTH} characters (got {len(name)})",
        )
    if not _DNS_LABEL.fullmatch(name):
        raise ApiError(
            400, "invalid_name",
            "store name may contain only lowercase letters, digits and '-', "
            "and must end with a letter or digit",
        )
    return name


def validate_engine(engine: Any) -> str:
    """Return an available engine, or raise 400 (unknown) / 501 (planned, not available)."""
    if engine is None:
        return DEFAULT_ENGINE
    if engine in ENGINES_AVAILABLE:
        return engine
    if engine in ENGINES_PLANNED:
        raise ApiError(
            501, "engine_not_available",
            f"engine '{engine}' is not available yet; available: {', '.join(ENGINES_AVAILABLE)}",
        )
    known = ", ".join(ENGINES_AVAILABLE + ENGINES_PLANNED)
    raise ApiError(400, "invalid_engine", f"engine must be one of: {known}")


def validate_fields(data: dict[str, Any], allowed: frozenset[str]) -> None:
    """Reject unknown fields so typos never pass silently."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(
            400, "unknown_field",
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
        )


def parse_store_data(data: Any, *, check_engine: bool = True) -> tuple[str, str]:
    """Validate the data of a create/delete event and return (name, engine).

    Delete events may carry an engine; it is ignored (check_engine=False).
    """
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_data", "event data must be a JSON object")
    validate_fields(data, frozenset({"name", "engine"}))
    name = validate_store_name(data.get("name"))
    engine = validate_engine(data.get("engine")) if check_engine else DEFAULT_ENGINE
    return name, engine


def parse_store_event(subject: str | None, data: Any, *,
                      check_engine: bool = True) -> tuple[str, str]:
    """Validate a create/delete event: data as above, and subject (if set) equal to the name."""
    name, engine = parse_store_data(data, check_engine=check_engine)
    if subject and subject != name:
        raise ApiError(400, "subject_mismatch",
                       f"event subject {subject!r} does not match data.name {name!r}")
    return name, engine
