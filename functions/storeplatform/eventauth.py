"""Who may deliver events to a function: Knative's OIDC sender identity, checked here.

With Eventing's `authentication-oidc` on, the Broker's filter sends every delivery with
`Authorization: Bearer <JWT>`, a ServiceAccount token of the Trigger's own identity
(`<trigger>-oidc-eventing.knative.dev-trigger`) for the audience the Trigger names. A
function accepts an event only with such a token: signed by the API server's
ServiceAccount key (its OIDC discovery document and key set, read through the function's
own Kubernetes client), for this function's audience, unexpired, from an allowed subject.

PyJWT (with cryptography for RS256) does the JWT part; the keys are cached and fetched
again, at most every KEY_REFRESH_SECONDS, when a token names a key id not seen before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt

from storeplatform import contract
from storeplatform.config import ConfigError
from storeplatform.errors import Kind, PlatformError

log = logging.getLogger(__name__)

MODE_OIDC = "oidc"
MODE_NONE = "none"  # the documented opt-out (a test harness, a cluster without OIDC)
# Settings of every function that receives events; empty audience/senders: the defaults
# its knative/ manifest states too (contract.service_audience, the Triggers' identities).
SETTINGS: dict[str, Any] = {"EVENT_AUTH": MODE_OIDC, "EVENT_AUDIENCE": "", "EVENT_SENDERS": ""}
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
KEY_REFRESH_SECONDS = 10.0
CLOCK_LEEWAY_SECONDS = 30
ALGORITHMS = ("RS256",)  # what the API server signs ServiceAccount tokens with

Fetch = Callable[[str], Any]  # GET a path of the API server -> its JSON


def subjects(setting: str) -> tuple[str, ...]:
    """A comma-separated list of subjects; a trailing `*` matches any rest (as EventPolicy)."""
    return tuple(part.strip() for part in setting.split(",") if part.strip())


def allowed(subject: str, patterns: Iterable[str]) -> bool:
    return any(subject.startswith(p[:-1]) if p.endswith("*") else subject == p
               for p in patterns)


class Keys:
    """The API server's issuer and token-signing keys, fetched through `fetch`."""

    def __init__(self, fetch: Fetch, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._issuer = ""
        self._fetched_at = float("-inf")

    def _refresh(self) -> None:
        discovery = self._fetch(DISCOVERY_PATH)
        key_set = jwt.PyJWKSet.from_dict(self._fetch(JWKS_PATH))
        self._issuer = str(discovery["issuer"])
        self._keys = {key.key_id: key.key for key in key_set.keys}
        self._fetched_at = self._clock()

    def lookup(self, key_id: str | None) -> tuple[Any, str]:
        """(the public key of key_id, the issuer); UNAUTHORIZED for a key the API server
        does not have."""
        with self._lock:
            stale = self._clock() - self._fetched_at > KEY_REFRESH_SECONDS
            if key_id not in self._keys and stale:
                self._refresh()
            if key_id not in self._keys:
                raise _unauthorized(f"unknown signing key {key_id!r}")
            return self._keys[key_id], self._issuer


class Senders:
    """The check of one endpoint: its audience and the subjects that may send to it."""

    def __init__(self, keys: Keys, audience: str, patterns: Iterable[str]) -> None:
        self.keys = keys
        self.audience = audience
        self.patterns = tuple(patterns)

    def check(self, authorization: str | None) -> str:
        """The sender's subject; UNAUTHORIZED without a valid token, FORBIDDEN for a valid
        token of a sender that may not deliver here."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("no bearer token")
        try:
            key_id = jwt.get_unverified_header(token.strip()).get("kid")
            key, issuer = self.keys.lookup(key_id)
            claims = jwt.decode(token.strip(), key, algorithms=list(ALGORITHMS),
                                audience=self.audience, issuer=issuer,
                                leeway=CLOCK_LEEWAY_SECONDS,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as err:
            raise _unauthorized(str(err)) from err
        subject = str(claims["sub"])
        if not allowed(subject, self.patterns):
            log.warning("event from %s refused: not an allowed sender here", subject)
            raise PlatformError(Kind.FORBIDDEN, "sender_forbidden",
                                "this sender may not deliver events here")
        return subject


def _unauthorized(detail: str) -> PlatformError:
    log.warning("event refused: %s", detail)  # the reason is for the log, not the sender
    return PlatformError(Kind.UNAUTHORIZED, "sender_unauthenticated",
                         "a valid OIDC sender token for this function is required")


def keys_for(settings: Mapping[str, Any], fetch: Fetch) -> Keys | None:
    """The key source of a function's checks; None when EVENT_AUTH=none."""
    mode = settings["EVENT_AUTH"]
    if mode not in (MODE_OIDC, MODE_NONE):
        raise ConfigError(f"setting EVENT_AUTH must be {MODE_OIDC!r} or {MODE_NONE!r}, "
                          f"got {mode!r}")
    return Keys(fetch) if mode == MODE_OIDC else None


def endpoint(keys: Keys | None, settings: Mapping[str, Any], service: str,
             senders: Iterable[str], configured: str = "") -> Senders | None:
    """The check of one endpoint of `service`: its audience (EVENT_AUDIENCE, else the
    Service's), and the subjects in `configured` (a setting), else `senders`."""
    if keys is None:
        return None
    audience = settings["EVENT_AUDIENCE"] or contract.service_audience(
        settings["PLATFORM_NAMESPACE"], service)
    return Senders(keys, audience, subjects(configured) or tuple(senders))
