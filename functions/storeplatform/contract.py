"""The platform contract in code (docs/contract.md): event types and sources, names, labels,
and the validation of everything a producer sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from storeplatform import engines
from storeplatform.errors import Kind, PlatformError

# ---------------------------------------------------------------- events
EVENT_PREFIX = "io.storeplatform.store."
CREATE = EVENT_PREFIX + "create"
DELETE = EVENT_PREFIX + "delete"
LIST = EVENT_PREFIX + "list"
LIST_RESULT = LIST + ".result"
READY = EVENT_PREFIX + "ready"
FAILED = EVENT_PREFIX + "failed"
DELETED = EVENT_PREFIX + "deleted"
# The store owner's way in: a new admin password, set by a runner Job, shown once.
RESET_ADMIN_PASSWORD = EVENT_PREFIX + "admin-password.reset"  # gateway -> Broker -> create-store
REVEAL_ADMIN_PASSWORD = EVENT_PREFIX + "admin-password.reveal"  # gateway -> list-stores
REVEAL_RESULT = REVEAL_ADMIN_PASSWORD + ".result"
ADMIN_PASSWORD_CHANGED = EVENT_PREFIX + "admin-password.changed"  # emitted by the runner

GATEWAY_SOURCE = "/storeplatform/gateway"
RUNNER_SOURCE = "/storeplatform/runner"
LIST_SOURCE = "/storeplatform/list-stores"

# ---------------------------------------------------------------- names
NAME_PREFIX = "store-"
NAME_MAX_LENGTH = 40
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

PLATFORM_NAMESPACE = "storeplatform"
MANAGED_BY = "storeplatform"
CREDENTIALS_SECRET = "store-credentials"  # noqa: S105 (a Secret name, not a password)
RUNNER_NAME = "storeplatform-runner"  # ClusterRole and RoleBinding; prefix of the accounts
RUNNER_COMPONENT = "helm-runner"
STORES_CONFIG_MAP = "storeplatform-stores"  # the store cap's places (lifecycle/capacity.py)

ACTION_INSTALL = "install"  # the runner's action: its argument, Job name and label
ACTION_DELETE = "delete"
ACTION_RESET_ADMIN_PASSWORD = "reset-admin-password"  # noqa: S105 (an action name)
_JOB_PREFIX = {ACTION_INSTALL: "helm-install-", ACTION_DELETE: "helm-delete-",
               ACTION_RESET_ADMIN_PASSWORD: "admin-password-"}
# The one-time Secret (in the store's namespace) the reset Job leaves for list-stores to hand
# over once; list-stores may read and delete Secrets of this name only.
ADMIN_PASSWORD_SECRET = "storeplatform-admin-password"  # noqa: S105 (a name, not a password)
ADMIN_PASSWORD_TTL_SECONDS = 900

# ---------------------------------------------------------------- labels and annotations
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_STORE = "storeplatform.io/store"
LABEL_ENGINE = "storeplatform.io/engine"
LABEL_CREATED_AT = "storeplatform.io/created-at"
LABEL_ACTION = "storeplatform.io/action"
ANNOTATION_CREATED_AT = "storeplatform.io/created-at"
ANNOTATION_PHASE = "storeplatform.io/phase"
ANNOTATION_REASON = "storeplatform.io/reason"
ANNOTATION_PHASE_AT = "storeplatform.io/phase-at"  # when the phase was marked (RFC 3339)
ANNOTATION_EVENT_ID = "storeplatform.io/event-id"
ANNOTATION_TIMELINE = "storeplatform.io/timeline"  # JSON {step: start time}, by the runner
ANNOTATION_ADMIN_RESET = "storeplatform.io/admin-password-reset"  # JSON {id, state, ...}
ANNOTATION_RESET_ID = "storeplatform.io/reset-id"
ANNOTATION_EXPIRES_AT = "storeplatform.io/expires-at"

STORE_SELECTOR = LABEL_STORE  # every object of a store, the chart's included
RUNNER_SELECTOR = f"{LABEL_COMPONENT}={RUNNER_COMPONENT}"
MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
DEAD_LETTER_REASON = "DeadLetter"  # the reason of the Events that record dead letters


# Pod Security of every store namespace; part of the platform's marks (is_platform_namespace).
POD_SECURITY_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted"
                       for mode in ("enforce", "audit", "warn")}


def runner_account(store: str) -> str:
    """The store's own runner ServiceAccount (in the platform namespace): its RoleBinding
    reaches that store's namespace only, so a runner never touches another store."""
    return f"{RUNNER_NAME}-{store}"


def service_account_subject(namespace: str, name: str) -> str:
    """How the API server (and so an OIDC token's `sub`) names a ServiceAccount."""
    return f"system:serviceaccount:{namespace}:{name}"


def trigger_sender(platform_namespace: str, trigger: str) -> str:
    """The OIDC subject the Broker delivers a Trigger's events with (Knative names the
    Trigger's ServiceAccount `<trigger>-oidc-eventing.knative.dev-trigger`)."""
    return service_account_subject(platform_namespace,
                                   f"{trigger}-oidc-eventing.knative.dev-trigger")


def broker_audience(platform_namespace: str, broker: str = "default") -> str:
    """The OIDC audience of a Broker, as Knative derives it (<group>/<kind>/<ns>/<name>)."""
    return f"eventing.knative.dev/broker/{platform_namespace}/{broker}"


def service_audience(platform_namespace: str, service: str) -> str:
    """The OIDC audience a function checks: its Knative Service's, in the same form (the
    Triggers name it as their subscriber's `audience`)."""
    return f"serving.knative.dev/service/{platform_namespace}/{service}"


def job_name(action: str, store: str) -> str:
    """Deterministic runner Job name: helm-install-<store> or helm-delete-<store>."""
    return _JOB_PREFIX[action] + store


def values_secret_name(store: str) -> str:
    """The platform-namespace Secret that carries the store's Helm values."""
    return job_name(ACTION_INSTALL, store)


def store_labels(store: str) -> dict[str, str]:
    """Labels that tie an object the platform creates back to the platform and its store."""
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_STORE: store}


def manages(namespace: Mapping[str, Any]) -> bool:
    """True when a namespace is a store's: its store label names the namespace itself."""
    meta = namespace.get("metadata") or {}
    return bool(meta.get("name")) and (meta.get("labels") or {}).get(LABEL_STORE) == meta["name"]


def is_platform_namespace(namespace: Mapping[str, Any]) -> bool:
    """True when a namespace carries every mark create-store writes, and nothing else writes
    (knative/150-admission-policies.yaml): the store label naming the namespace itself,
    managed-by, an engine, a numeric created-at label, the created-at annotation, and Pod
    Security `restricted` (enforce, audit, warn). Only such a namespace is adopted."""
    meta = namespace.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return (manages(namespace) and str(meta["name"]).startswith(NAME_PREFIX)
            and labels.get(LABEL_MANAGED_BY) == MANAGED_BY and bool(labels.get(LABEL_ENGINE))
            and str(labels.get(LABEL_CREATED_AT, "")).isdigit()
            and bool(annotations.get(ANNOTATION_CREATED_AT))
            and all(labels.get(key) == value for key, value in POD_SECURITY_LABELS.items()))


# ---------------------------------------------------------------- validation
def _invalid(code: str, message: str) -> PlatformError:
    return PlatformError(Kind.INVALID, code, message)


def validate_store_name(name: Any) -> str:
    """Return the name if it is a valid store name, else raise INVALID saying why."""
    if not isinstance(name, str) or not name:
        raise _invalid("invalid_name", "store name is required")
    if not name.startswith(NAME_PREFIX):
        raise _invalid("invalid_name", f"store name must start with '{NAME_PREFIX}'")
    if len(name) > NAME_MAX_LENGTH:
        raise _invalid("invalid_name", f"store name must be at most {NAME_MAX_LENGTH} "
                       f"characters (got {len(name)})")
    if not _DNS_LABEL.fullmatch(name):
        raise _invalid("invalid_name", "store name may contain only lowercase letters, digits "
                       "and '-', and must end with a letter or digit")
    return name


def validate_engine(engine: Any) -> str:
    """Return an available engine (None: the default); a planned one is NOT_AVAILABLE."""
    if engine is None:
        return engines.DEFAULT
    if isinstance(engine, str) and engine in engines.AVAILABLE:
        return engine
    available = ", ".join(engines.AVAILABLE)
    if isinstance(engine, str) and engine in engines.PLANNED:
        raise PlatformError(Kind.NOT_AVAILABLE, "engine_not_available",
                            f"engine '{engine}' is not available yet; available: {available}")
    known = ", ".join((*engines.AVAILABLE, *engines.PLANNED))
    raise _invalid("invalid_engine", f"engine must be one of: {known}")


def validate_fields(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Reject unknown fields so typos never pass silently."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _invalid("unknown_field", f"unknown field(s): {', '.join(unknown)}; "
                       f"allowed: {', '.join(sorted(allowed))}")


def parse_store_event(subject: str | None, data: Any, *,
                      check_engine: bool = True) -> tuple[str, str]:
    """Validate the data of a create/delete event and return (name, engine).

    The subject, when set, must equal data.name. Delete events may carry an engine; it is
    ignored (check_engine=False).
    """
    if not isinstance(data, dict):
        raise _invalid("invalid_data", "event data must be a JSON object")
    validate_fields(data, frozenset({"name", "engine"}))
    name = validate_store_name(data.get("name"))
    engine = validate_engine(data.get("engine")) if check_engine else engines.DEFAULT
    if subject and subject != name:
        raise _invalid("subject_mismatch",
                       f"event subject {subject!r} does not match data.name {name!r}")
    return name, engine


def validate_list_data(data: Any) -> None:
    """A list event carries no data (or {})."""
    if data not in (None, {}):
        raise _invalid("unknown_field", "list events carry no data; send {} or nothing")


def requested_engine(body: bytes) -> str:
    """The engine a POST /stores/{name} body asks for (an empty body: the default)."""
    if not body.strip():
        return validate_engine(None)
    try:
        data = json.loads(body.decode("utf-8"))
    except RecursionError as err:
        raise _invalid("invalid_json", "body JSON is nested too deeply") from err
    except (UnicodeDecodeError, ValueError) as err:  # the parser's own text stays out
        raise _invalid("invalid_json", "body is not valid JSON") from err
    if not isinstance(data, dict):
        raise _invalid("invalid_json", "body must be a JSON object like {\"engine\": ...}")
    validate_fields(data, frozenset({"engine"}))
    return validate_engine(data.get("engine"))


_RESET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_reset_id(value: Any) -> str:
    """The id of an admin-password reset (the event id the gateway answered with)."""
    if not isinstance(value, str) or not _RESET_ID.fullmatch(value):
        raise _invalid("invalid_reset_id", "reset id must be 1-64 letters, digits, '.', '_' "
                       "or '-' (the id POST /stores/{name}/admin-password answered)")
    return value


def parse_reset_event(subject: str | None, data: Any) -> str:
    """Validate an admin-password reset event's data ({"name"}); the store name."""
    name, _ = parse_store_event(subject, data, check_engine=False)
    if isinstance(data, dict) and "engine" in data:
        raise _invalid("unknown_field", "unknown field(s): engine; allowed: name")
    return name


def parse_reveal_event(data: Any) -> tuple[str, str]:
    """Validate an admin-password reveal event's data ({"name", "id"}); (store, reset id)."""
    if not isinstance(data, dict):
        raise _invalid("invalid_data", "event data must be a JSON object")
    validate_fields(data, frozenset({"name", "id"}))
    return validate_store_name(data.get("name")), validate_reset_id(data.get("id"))
