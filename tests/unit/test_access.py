"""Who may call the gateway: the bearer token and the CORS origins."""

import pytest

from storeplatform import access, gateway
from storeplatform.errors import Kind, PlatformError


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong", "Basic s3cret-token",
                                    "bearer s3cret-token-and-more"])
def test_a_missing_or_wrong_token_is_unauthorized(header):
    with pytest.raises(PlatformError) as err:
        access.check_token("s3cret-token", header)
    assert (err.value.kind, err.value.code) == (Kind.UNAUTHORIZED, "unauthorized")


@pytest.mark.parametrize("header", ["Bearer s3cret-token", "bearer s3cret-token"])
def test_the_right_token_passes(header):
    access.check_token("s3cret-token", header)


def test_without_a_configured_token_anything_passes():
    access.check_token("", None)


def test_allowed_origins_setting():
    assert access.allowed_origins(" http://a:1, ,http://b ") == {"http://a:1", "http://b"}


def test_token_required_when_configured(broker, lister):
    app = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url,
                              "GATEWAY_TOKEN": "s3cret-token"})
    client = app.test_client()
    assert client.post("/stores/store-a").status_code == 401
    assert client.post("/stores/store-a", headers={"Authorization": "Bearer wrong"}
                       ).status_code == 401
    assert client.post("/stores/store-a", headers={"Authorization": "Bearer s3cret-token"}
                       ).status_code == 202
    assert client.get("/health").status_code == 200
    assert client.options("/stores/store-a").status_code != 401  # CORS preflights pass
    assert len(broker.requests) == 1


def test_cors_only_for_configured_origins(broker, lister):
    app = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url,
                              "ALLOWED_ORIGINS": "http://127.0.0.1:9000"})
    client = app.test_client()
    allowed = client.get("/stores", headers={"Origin": "http://127.0.0.1:9000"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9000"
    assert allowed.headers["Vary"] == "Origin"
    other = client.get("/stores", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
