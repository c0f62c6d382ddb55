"""Configuration enters once, at start-up, as a mapping; nothing else reads the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from storeplatform import logs

REQUIRED = object()


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message names it."""


def load(spec: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every key of spec from overrides, then the environment, then its default.

    A default of REQUIRED makes a missing value a ConfigError naming the setting; a default
    of int/float type converts the value. Unknown override keys are an error too.
    """
    overrides = dict(overrides or {})
    environ = os.environ if environ is None else environ
    unknown = sorted(set(overrides) - set(spec))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    config: dict[str, Any] = {}
    for key, default in spec.items():
        value = overrides[key] if key in overrides else environ.get(key)
        if value is None or value == "":
            if default is REQUIRED:
                raise ConfigError(f"setting {key} is required (set the environment variable)")
            value = default
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            try:
                value = type(default)(value)
            except ValueError as err:
                raise ConfigError(f"setting {key} must be a number, got {value!r}") from err
        config[key] = value
    return config


# Loggers that write request or response bodies at DEBUG: the Kubernetes client's REST
# layer logs every answer (Secrets included) and urllib3 its wire traffic. They never log
# below WARNING, whatever LOG_LEVEL says (docs/security.md, "No secret in any log").
BODY_LOGGERS = ("kubernetes.client.rest", "kubernetes", "urllib3")


def quiet_body_loggers() -> None:
    """Keep the loggers that could write a secret at WARNING or above."""
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET (0) would inherit the root's DEBUG
            logger.setLevel(logging.WARNING)


def setup_logging(level: str = "INFO") -> None:
    """One JSON object per line, to stderr, for every service (storeplatform.logs); never a
    body logger's DEBUG."""
    logs.setup(level)
    quiet_body_loggers()


def start(spec: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A service's start-up: its settings (a ConfigError names what is missing), then logging."""
    settings = load(spec, overrides)
    setup_logging(settings["LOG_LEVEL"])
    return settings
