"""Who may deliver events to a function: OIDC sender tokens, verified with real RS256 keys.

The keys and tokens are real (cryptography's RSA, PyJWT's signing); what the API server
would serve (its discovery document and key set) is a dict here. The real API server's
keys and tokens are used in tests/integration/test_event_auth.py.
"""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from storeplatform import create_store, eventauth, list_stores
from storeplatform.config import ConfigError
from storeplatform.errors import Kind, PlatformError
from tests.helpers import encode, error_of
from tests.unit.conftest import RUNNER
from tests.unit.fakekube import FakeKube

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "serving.knative.dev/service/storeplatform/create-store"
TRIGGER = "system:serviceaccount:storeplatform:create-store-oidc-eventing.knative.dev-trigger"


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class APIServer:
    """What the API server serves at its OIDC discovery paths, and the fetches made."""

    def __init__(self, *keys):
        self.keys = dict(keys)
        self.fetches = []

    def fetch(self, path):
        self.fetches.append(path)
        if path == eventauth.DISCOVERY_PATH:
            return {"issuer": ISSUER, "jwks_uri": ISSUER + eventauth.JWKS_PATH}
        assert path == eventauth.JWKS_PATH
        return {"keys": [json.loads(RSAAlgorithm.to_jwk(key.public_key())) | {
            "kid": kid, "use": "sig", "alg": "RS256"} for kid, key in self.keys.items()]}


def token(key, kid="k1", sub=TRIGGER, aud=AUDIENCE, iss=ISSUER, lifetime=600, **extra):
    now = int(time.time())
    claims = {"sub": sub, "aud": [aud], "iss": iss, "iat": now, "nbf": now,
              "exp": now + lifetime} | extra
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def signing_key():
    return new_key()


@pytest.fixture
def server(signing_key):
    return APIServer(("k1", signing_key))


@pytest.fixture
def senders(server):
    return eventauth.Senders(eventauth.Keys(server.fetch), AUDIENCE, [TRIGGER])


def test_the_triggers_token_for_this_audience_passes(senders, signing_key):
    assert senders.check(f"Bearer {token(signing_key)}") == TRIGGER


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc",
                                    "Bearer not.a.jwt"])
def test_without_a_token_it_is_unauthorized(senders, header):
    with pytest.raises(PlatformError) as err:
        senders.check(header)
    assert (err.value.kind, err.value.code) == (Kind.UNAUTHORIZED, "sender_unauthenticated")


@pytest.mark.parametrize("claims", [
    {"aud": "eventing.knative.dev/broker/storeplatform/default"},  # a token for the Broker
    {"aud": "https://kubernetes.default.svc.cluster.local"},  # one for the API server
    {"iss": "https://evil.example"},
    {"lifetime": -120},  # expired beyond the leeway
])
def test_a_token_for_another_audience_issuer_or_time_is_unauthorized(senders, signing_key,
                                                                     claims):
    with pytest.raises(PlatformError) as err:
        senders.check(f"Bearer {token(signing_key, **claims)}")
    assert err.value.kind is Kind.UNAUTHORIZED
    assert "evil" not in err.value.message and "aud" not in err.value.message


def test_a_token_signed_by_another_key_is_unauthorized(senders):
    with pytest.raises(PlatformError) as err:
        senders.check(f"Bearer {token(new_key())}")  # same kid, another key
    assert err.value.kind is Kind.UNAUTHORIZED


def test_unsigned_and_symmetric_tokens_are_unauthorized(senders, server):
    now = int(time.time())
    claims = {"sub": TRIGGER, "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    # The classic confusion: HMAC "signed" with the public key as the secret (made by hand:
    # PyJWT refuses to make one).
    public_jwk = json.dumps(server.fetch(eventauth.JWKS_PATH)["keys"][0]).encode()
    signing_input = b".".join(b64(json.dumps(part).encode()) for part in (
        {"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims))
    forged = (signing_input + b"." + b64(hmac.new(public_jwk, signing_input,
                                                  hashlib.sha256).digest())).decode()
    for bad in (unsigned, forged):
        with pytest.raises(PlatformError) as err:
            senders.check(f"Bearer {bad}")
        assert err.value.kind is Kind.UNAUTHORIZED


def test_a_valid_token_of_another_sender_is_forbidden(senders, signing_key):
    for subject in ("system:serviceaccount:storeplatform:storeplatform-gateway",
                    "system:serviceaccount:other:create-store-oidc-eventing.knative.dev-trigger",
                    TRIGGER + "-x"):
        with pytest.raises(PlatformError) as err:
            senders.check(f"Bearer {token(signing_key, sub=subject)}")
        assert (err.value.kind, err.value.code) == (Kind.FORBIDDEN, "sender_forbidden")


def test_a_new_key_is_fetched_once_then_not_again_within_the_refresh_time(server, senders):
    rotated = new_key()
    assert senders.check(f"Bearer {token(server.keys['k1'])}")
    assert server.fetches.count(eventauth.JWKS_PATH) == 1
    server.keys["k2"] = rotated
    senders.keys._fetched_at -= eventauth.KEY_REFRESH_SECONDS + 1  # as if time had passed
    assert senders.check(f"Bearer {token(rotated, kid='k2')}") == TRIGGER
    assert server.fetches.count(eventauth.JWKS_PATH) == 2
    for _ in range(3):  # an unknown kid again at once: no fetch storm
        with pytest.raises(PlatformError):
            senders.check(f"Bearer {token(rotated, kid='k3')}")
    assert server.fetches.count(eventauth.JWKS_PATH) == 2


def test_subject_patterns_match_exactly_or_by_a_trailing_star():
    patterns = eventauth.subjects(" a:b:c , system:serviceaccount:sp:runner-* ,")
    assert patterns == ("a:b:c", "system:serviceaccount:sp:runner-*")
    assert eventauth.allowed("a:b:c", patterns)
    assert eventauth.allowed("system:serviceaccount:sp:runner-store-a", patterns)
    assert not eventauth.allowed("a:b:c:d", patterns)
    assert not eventauth.allowed("system:serviceaccount:sp:runner", patterns)


def test_an_unknown_event_auth_mode_stops_the_start():
    with pytest.raises(ConfigError, match="EVENT_AUTH"):
        create_store.create_app(RUNNER | {"EVENT_AUTH": "maybe"}, kube=FakeKube())


class KubeWithKeys(FakeKube):
    """The fake verbs, plus the API server's discovery paths."""

    def __init__(self, server):
        super().__init__()
        self.server = server

    def get_json(self, path):
        return self.server.fetch(path)


def post(client, path, event_type, data, authorization=None, mode="binary"):
    headers, body = encode(event_type, data, mode, subject=data.get("name"))
    if authorization:
        headers["Authorization"] = authorization
    return client.post(path, headers=headers, data=body)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_create_store_handles_only_what_its_trigger_delivers(server, signing_key, mode):
    kube = KubeWithKeys(server)
    client = create_store.create_app(RUNNER | {"EVENT_AUTH": "oidc"}, kube=kube).test_client()
    data = {"name": "store-a"}
    refused = [post(client, "/", "io.storeplatform.store.create", data, auth, mode)
               for auth in (None, f"Bearer {token(signing_key, aud='x')}",
                            f"Bearer {token(signing_key, sub='system:serviceaccount:x:y')}")]
    assert [r.status_code for r in refused] == [401, 401, 403]
    assert kube.of_kind("Namespace") == [] and kube.of_kind("Job") == []
    accepted = post(client, "/", "io.storeplatform.store.create", data,
                    f"Bearer {token(signing_key)}", mode)
    assert (accepted.status_code, accepted.data) == (202, b"")
    assert [n["metadata"]["name"] for n in kube.of_kind("Namespace")] == ["store-a"]


def test_list_stores_takes_lists_from_the_gateway_and_dead_letters_from_the_broker(
        server, signing_key):
    client = list_stores.create_app({"EVENT_AUTH": "oidc"}, kube=KubeWithKeys(server)
                                    ).test_client()
    audience = "serving.knative.dev/service/storeplatform/list-stores"
    gateway = token(signing_key, aud=audience,
                    sub="system:serviceaccount:storeplatform:storeplatform-gateway")
    delete_trigger = token(signing_key, aud=audience, sub=TRIGGER.replace("create", "delete"))
    listing = post(client, "/", "io.storeplatform.store.list", {}, f"Bearer {gateway}")
    assert listing.status_code == 200
    assert post(client, "/", "io.storeplatform.store.list", {},
                f"Bearer {delete_trigger}").status_code == 403
    fake = post(client, "/dead-letter", "io.storeplatform.store.create", {"name": "store-a"},
                f"Bearer {gateway}")
    assert (fake.status_code, error_of(fake)["code"]) == (403, "sender_forbidden")
    assert post(client, "/dead-letter", "io.storeplatform.store.create", {"name": "store-a"}
                ).status_code == 401
    real = post(client, "/dead-letter", "io.storeplatform.store.create", {"name": "store-a"},
                f"Bearer {delete_trigger}")
    assert real.status_code == 202
