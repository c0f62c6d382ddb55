"""The gateway's API: validation, events sent to the Broker, list through list-stores.

The Broker and list-stores are real HTTP servers on 127.0.0.1 that record what they get.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event
from werkzeug.wrappers import Response

from storeplatform import gateway
from storeplatform.events import new_event
from tests.helpers import Recorder, error_of, free_port, serve

ROOT = Path(__file__).resolve().parents[2]
STORES = {"stores": [{"name": "store-a", "status": "ready"}], "deadLetters": []}


def list_reply(_request):
    message = to_binary_event(new_event("io.storeplatform.store.list.result", "/t", None, STORES))
    return Response(message.body, status=200, headers=message.headers)


@pytest.fixture
def broker():
    recorder = Recorder()
    with serve(recorder) as url:
        recorder.url = url
        yield recorder


@pytest.fixture
def lister():
    recorder = Recorder(list_reply)
    with serve(recorder) as url:
        recorder.url = url
        yield recorder


@pytest.fixture
def client(broker, lister):
    app = gateway.create_app({"K_SINK": broker.url + "/storeplatform/default",
                              "LIST_URL": lister.url, "DASHBOARD_DIR": str(ROOT / "dashboard")})
    return app.test_client()


def sent_event(recorder):
    req = recorder.requests[-1]
    return from_http_event(HTTPMessage(headers=req["headers"], body=req["body"]))


def test_health(client):
    assert client.get("/health").get_json() == {"status": "ok"}


def test_create_posts_a_binary_create_event_and_answers_202(client, broker):
    response = client.post("/stores/store-a", json={"engine": "woocommerce"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["name"] == "store-a" and body["status"] == "provisioning"
    assert "ce-id" in {k.lower() for k in broker.requests[-1]["headers"]}
    event = sent_event(broker)
    assert broker.requests[-1]["path"] == "/storeplatform/default"
    assert event.get_type() == "io.storeplatform.store.create"
    assert event.get_subject() == "store-a"
    assert event.get_data() == {"name": "store-a", "engine": "woocommerce"}
    assert body["id"] == event.get_id()


@pytest.mark.parametrize("body", [b"", b"{}", b"  "])
def test_create_engine_defaults_to_woocommerce(client, broker, body):
    response = client.post("/stores/store-a", data=body)
    assert response.status_code == 202
    assert sent_event(broker).get_data()["engine"] == "woocommerce"


def test_delete_posts_a_delete_event(client, broker):
    response = client.delete("/stores/store-a")
    assert response.status_code == 202
    assert response.get_json()["status"] == "deleting"
    event = sent_event(broker)
    assert (event.get_type(), event.get_data()) == ("io.storeplatform.store.delete",
                                                   {"name": "store-a"})


def test_list_asks_list_stores_with_a_list_event(client, lister):
    response = client.get("/stores")
    assert response.status_code == 200
    assert response.get_json() == STORES
    assert sent_event(lister).get_type() == "io.storeplatform.store.list"


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("post", "/stores/shop-a", b"", 400, "invalid_name"),
    ("post", "/stores/store-A", b"", 400, "invalid_name"),
    ("post", "/stores/store-" + "x" * 35, b"", 400, "invalid_name"),
    ("post", "/stores/store-a-", b"", 400, "invalid_name"),
    ("delete", "/stores/nope", b"", 400, "invalid_name"),
    ("post", "/stores/store-a", b"{not json", 400, "invalid_json"),
    ("post", "/stores/store-a", b"[1]", 400, "invalid_json"),
    ("post", "/stores/store-a", b'{"engine": "woocommerce", "size": "xl"}', 400, "unknown_field"),
    ("post", "/stores/store-a", b'{"engine": "shopify"}', 400, "invalid_engine"),
    ("post", "/stores/store-a", b'{"engine": "medusa"}', 501, "engine_not_available"),
    ("post", "/stores/store-a", b'{"engine": "' + b"w" * 2000 + b'"}', 400, "body_too_large"),
])
def test_bad_requests_are_json_errors_and_send_nothing(client, broker, method, path, body,
                                                       status, code):
    response = getattr(client, method)(path, data=body, content_type="application/json")
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code and error["message"]
    assert broker.requests == []


def test_medusa_message_says_not_available_yet(client):
    response = client.post("/stores/store-a", json={"engine": "medusa"})
    assert "not available yet" in error_of(response)["message"]


def test_unknown_path_is_a_json_404(client):
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_sink_unreachable_is_503_and_nothing_half_done():
    port = free_port()  # nothing listens there
    app = gateway.create_app({"K_SINK": f"http://127.0.0.1:{port}/", "LIST_URL":
                              f"http://127.0.0.1:{port}/", "EVENT_TIMEOUT": 1.0})
    response = app.test_client().post("/stores/store-a")
    assert response.status_code == 503
    assert error_of(response)["code"] == "sink_unavailable"
    assert app.test_client().get("/stores").status_code == 503


def test_sink_5xx_is_503_and_4xx_is_502():
    failing = Recorder(lambda _r: Response(status=500))
    refusing = Recorder(lambda _r: Response(status=400))
    with serve(failing) as bad, serve(refusing) as no:
        for url, status in ((bad, 503), (no, 502)):
            app = gateway.create_app({"K_SINK": url, "LIST_URL": url})
            assert app.test_client().post("/stores/store-a").status_code == status


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
    assert client.get("/config.json").get_json() == {"gatewayUrl": "", "authRequired": True}


def test_cors_only_for_configured_origins(broker, lister):
    app = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url,
                              "ALLOWED_ORIGINS": "http://127.0.0.1:9000"})
    client = app.test_client()
    allowed = client.get("/stores", headers={"Origin": "http://127.0.0.1:9000"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9000"
    other = client.get("/stores", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize("missing", ["K_SINK", "LIST_URL"])
def test_missing_required_setting_fails_at_start(monkeypatch, missing):
    settings = {"K_SINK": "http://127.0.0.1:1/", "LIST_URL": "http://127.0.0.1:1/"}
    del settings[missing]
    monkeypatch.delenv(missing, raising=False)
    with pytest.raises(Exception, match=missing):
        gateway.create_app(settings)


def http(method, url, body=None):
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_gateway_under_gunicorn_answers_the_seed_api(broker, lister):
    """The real server: gunicorn on 127.0.0.1, spoken to over HTTP."""
    port = free_port()
    env = os.environ | {"K_SINK": broker.url, "LIST_URL": lister.url,
                        "PYTHONPATH": str(ROOT / "functions")}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen([str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--threads", "2", "storeplatform.gateway:create_app()"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert http("GET", base + "/health") == (200, {"status": "ok"})
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert http("GET", base + "/stores") == (200, STORES)
        status, body = http("POST", base + "/stores/store-web", b'{"engine": "woocommerce"}')
        assert status == 202 and body["name"] == "store-web"
        assert http("DELETE", base + "/stores/store-web")[0] == 202
        assert http("POST", base + "/stores/bad_name")[0] == 400
        assert http("POST", base + "/stores/store-m", b'{"engine": "medusa"}')[0] == 501
        assert [sent_event(broker).get_type()] == ["io.storeplatform.store.delete"]
        assert len(broker.requests) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
