"""Who may call the gateway: the bearer token and the CORS origins."""

import pytest

from storeplatform import access, gateway
from storeplatform.config import ConfigError
from storeplatform.errors import Kind, PlatformError
from tests.helpers import error_of


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
                              "GATEWAY_AUTH": "token", "GATEWAY_TOKEN": "s3cret-token"})
    client = app.test_client()
    assert client.post("/stores/store-a", json={}).status_code == 401
    assert client.post("/stores/store-a", json={}, headers={"Authorization": "Bearer wrong"}
                       ).status_code == 401
    assert client.get("/stores").status_code == 401
    assert client.post("/stores/store-a", json={},
                       headers={"Authorization": "Bearer s3cret-token"}).status_code == 202
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


BASE = {"K_SINK": "http://127.0.0.1:1/", "LIST_URL": "http://127.0.0.1:1/"}


def test_without_a_token_the_gateway_refuses_to_start_naming_the_setting(monkeypatch):
    monkeypatch.delenv("GATEWAY_AUTH")  # the default, as a deployment that sets nothing
    with pytest.raises(ConfigError) as err:
        gateway.create_app(BASE)
    assert "GATEWAY_TOKEN" in str(err.value) and "GATEWAY_AUTH=none" in str(err.value)
    gateway.create_app(BASE | {"GATEWAY_TOKEN": "s3cret-token"})  # closed: starts


@pytest.mark.parametrize(("settings", "named"), [
    ({"GATEWAY_AUTH": "none", "GATEWAY_TOKEN": "t"}, "contradict"),
    ({"GATEWAY_AUTH": "open"}, "GATEWAY_AUTH"),
    ({"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": ""}, "GATEWAY_TOKEN"),
])
def test_contradicting_or_unknown_auth_settings_stop_the_start(settings, named):
    with pytest.raises(ConfigError, match=named):
        gateway.create_app(BASE | settings)


@pytest.fixture
def open_gateway(broker, lister):
    return gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url}).test_client()


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/plain"])
def test_a_write_that_is_not_json_is_415_and_sends_nothing(open_gateway, broker, content_type):
    """What a cross-site form (or a no-cors fetch) can send is never a store change."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = open_gateway.post("/stores/store-a", data=b"engine=woocommerce", headers=headers)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert open_gateway.post("/stores/store-a", headers=headers).status_code == 415
    assert open_gateway.delete("/stores/store-a", data=b"x", headers={
        "Content-Type": "text/plain"}).status_code == 415
    assert broker.requests == []


def test_a_delete_without_body_and_json_writes_pass(open_gateway, broker):
    assert open_gateway.delete("/stores/store-a").status_code == 202
    assert open_gateway.post("/stores/store-a", data=b"{}", headers={
        "Content-Type": "application/json; charset=utf-8"}).status_code == 202
    assert len(broker.requests) == 2


def test_every_answer_says_nosniff(open_gateway):
    for response in (open_gateway.get("/health"), open_gateway.get("/nope"),
                     open_gateway.post("/stores/x", json={}), open_gateway.get("/stores")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_creates_and_deletes_are_rate_limited_per_client(broker, lister):
    client = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url,
                                 "RATE_LIMIT": "3/minute", "RATE_LIMIT_PROXY_HOPS": 1}
                                ).test_client()

    def change(method, client_ip, spoof="6.6.6.6"):
        # One trusted proxy appends the address it saw; what precedes it is the client's.
        headers = {"X-Forwarded-For": f"{spoof}, {client_ip}"}
        return getattr(client, method)("/stores/store-a", json={}, headers=headers)

    assert [change(m, "10.0.0.1").status_code for m in ("post", "delete", "post")] == [202] * 3
    refused = change("delete", "10.0.0.1", spoof="7.7.7.7")  # a new claim changes nothing
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "too_many_requests"
    assert "3 per 1 minute" in error_of(refused)["message"]
    assert change("post", "10.0.0.2").status_code == 202  # another client
    assert client.get("/stores").status_code == 200  # reads are not limited
    assert len(broker.requests) == 4


def test_over_the_store_cap_the_gateway_answers_409_and_sends_nothing(broker, lister):
    """list-stores (a real HTTP receiver here) reports one store: store-a."""
    client = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url,
                                 "MAX_STORES": 1}).test_client()
    full = client.post("/stores/store-b", json={})
    assert full.status_code == 409
    assert error_of(full)["code"] == "store_limit_reached"
    assert "maximum of 1 stores" in error_of(full)["message"]
    assert broker.requests == []
    assert client.post("/stores/store-a", json={}).status_code == 202  # it exists: no new one
    assert client.delete("/stores/store-a").status_code == 202  # deletes are never capped
