"""The gateway's API: validation, events sent to the Broker, list through list-stores.

The Broker and list-stores are real HTTP servers on 127.0.0.1 that record what they get.
"""

import http.client as httpclient
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

from storeplatform import gateway
from tests.helpers import error_of, free_port, received_event
from tests.unit.conftest import STORES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(broker, lister):
    app = gateway.create_app({"K_SINK": broker.url + "/storeplatform/default",
                              "LIST_URL": lister.url, "DASHBOARD_DIR": str(ROOT / "dashboard")})
    return app.test_client()


def test_health(client):
    assert client.get("/health").get_json() == {"status": "ok"}


def test_create_posts_a_binary_create_event_and_answers_202(client, broker):
    response = client.post("/stores/store-a", json={"engine": "woocommerce"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["name"] == "store-a" and body["status"] == "provisioning"
    assert "ce-id" in {k.lower() for k in broker.requests[-1]["headers"]}
    event = received_event(broker)
    assert broker.requests[-1]["path"] == "/storeplatform/default"
    assert event.get_type() == "io.storeplatform.store.create"
    assert event.get_subject() == "store-a"
    assert event.get_data() == {"name": "store-a", "engine": "woocommerce"}
    assert body["id"] == event.get_id()


@pytest.mark.parametrize("body", [b"", b"{}", b"  "])
def test_create_engine_defaults_to_woocommerce(client, broker, body):
    response = client.post("/stores/store-a", data=body, content_type="application/json")
    assert response.status_code == 202
    assert received_event(broker).get_data()["engine"] == "woocommerce"


def test_delete_posts_a_delete_event(client, broker):
    response = client.delete("/stores/store-a")
    assert response.status_code == 202
    assert response.get_json()["status"] == "deleting"
    event = received_event(broker)
    assert (event.get_type(), event.get_data()) == ("io.storeplatform.store.delete",
                                                   {"name": "store-a"})


def test_list_asks_list_stores_with_a_list_event(client, lister):
    response = client.get("/stores")
    assert response.status_code == 200
    assert response.get_json() == STORES
    assert received_event(lister).get_type() == "io.storeplatform.store.list"


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


@pytest.mark.parametrize(("broker_is", "status", "code", "says"), [
    ("silent", 504, "sink_timeout", "may still be applied"),
    ("closed", 503, "sink_unavailable", "nothing was changed"),
])
@pytest.mark.parametrize("method", ["post", "delete"])
def test_a_broker_that_does_not_answer(silent_server, lister, broker_is, status, code, says,
                                       method):
    """Sent but no answer: 504, it may still happen (retrying is safe); not sent: 503."""
    sink = silent_server if broker_is == "silent" else f"http://127.0.0.1:{free_port()}/"
    client = gateway.create_app({"K_SINK": sink, "LIST_URL": lister.url,
                                 "EVENT_TIMEOUT": 0.3}).test_client()
    response = getattr(client, method)("/stores/store-a", data=b"",
                                       content_type="application/json")
    assert response.status_code == status
    assert error_of(response)["code"] == code and says in error_of(response)["message"]


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


def chunked(port, body, chunk=256):
    """POST body with Transfer-Encoding: chunked, over a real socket."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/stores/store-chunked")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for start in range(0, len(body), chunk):
        part = body[start:start + chunk]
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    answer = response.status, json.loads(response.read() or b"null")
    conn.close()
    return answer


def test_the_gateway_loads_no_kubernetes_client():
    """Issue 14's lean gateway: the app and everything it imports, in a fresh interpreter."""
    probe = ("import sys; from storeplatform import gateway; "
             "gateway.create_app({'K_SINK': 'http://127.0.0.1:1/', 'LIST_URL': "
             "'http://127.0.0.1:1/'}); "
             "import json; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True, env=os.environ | {
                             "PYTHONPATH": str(ROOT / "functions")}).stdout
    loaded = json.loads(out)
    assert "storeplatform.gateway" in loaded
    assert not [m for m in loaded if m.split(".")[0] == "kubernetes"], loaded
    assert "storeplatform.kube" not in loaded


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
        assert [received_event(broker).get_type()] == ["io.storeplatform.store.delete"]
        assert len(broker.requests) == 2
        # Chunked bodies (no Content-Length): read whole within the limit, else refused;
        # never cut at the limit and handled as if that were all.
        assert chunked(port, b'{"engine": "woocommerce"}')[0] == 202
        assert received_event(broker).get_data()["engine"] == "woocommerce"
        status, body = chunked(port, b'{"engine": "woocommerce", "pad": "' + b"x" * 5000
                               + b'"}')
        assert (status, body["error"]["code"]) == (400, "body_too_large")
        status, body = chunked(port, b'{"engine": "medusa"}' + b" " * 1100)
        assert (status, body["error"]["code"]) == (400, "body_too_large")
        assert len(broker.requests) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


# ---------------------------------------------------------------- issue 15: polling, tracing,
# the owner's admin password, metrics


def test_the_list_has_an_etag_and_an_unchanged_list_is_304_without_a_body(client):
    first = client.get("/stores")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag and first.headers["Cache-Control"] == "no-cache"
    again = client.get("/stores", headers={"If-None-Match": etag})
    assert (again.status_code, again.data) == (304, b"")
    assert again.headers["ETag"] == etag
    other = client.get("/stores", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.get_json() == STORES


def test_the_etag_follows_the_body(broker):
    from tests.helpers import Recorder, receiving
    from tests.unit.conftest import list_reply

    with receiving(Recorder(list_reply)) as lister:
        client = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url}).test_client()
        etag = client.get("/stores").headers["ETag"]
        STORES["stores"].append({"name": "store-b", "status": "provisioning"})
        try:
            changed = client.get("/stores", headers={"If-None-Match": etag})
        finally:
            STORES["stores"].pop()
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_a_callers_traceparent_is_continued_in_the_published_event(client, broker):
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    client.post("/stores/store-a", headers={"traceparent": parent}, json={})
    sent = received_event(broker).get_extension("traceparent")
    assert sent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert sent != parent  # the gateway's own span


def test_without_a_traceparent_each_request_starts_its_own_trace(client, broker):
    client.post("/stores/store-a", json={})
    client.post("/stores/store-b", json={})
    first, second = (gateway.tracing.parse(gateway.tracing.of_event(e).header())
                     for e in (received_event_at(broker, 0), received_event_at(broker, 1)))
    assert first.trace_id != second.trace_id


def received_event_at(broker, index):
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    req = broker.requests[index]
    return from_http_event(HTTPMessage(headers=req["headers"], body=req["body"]))


def test_a_reset_request_publishes_a_reset_event_and_answers_its_id(client, broker):
    response = client.post("/stores/store-a/admin-password", json={})
    assert response.status_code == 202
    event = received_event(broker)
    assert event.get_type() == "io.storeplatform.store.admin-password.reset"
    assert (event.get_subject(), event.get_data()) == ("store-a", {"name": "store-a"})
    assert response.get_json() == {"id": event.get_id(), "name": "store-a",
                                   "status": "resetting"}


@pytest.mark.parametrize(("path", "body", "code"), [
    ("/stores/bad/admin-password", b"", "invalid_name"),
    ("/stores/store-a/admin-password", b'{"password": "mine"}', "unknown_field"),
    ("/stores/store-a/admin-password/not%20an%20id", b"", "invalid_reset_id"),
])
def test_bad_reset_requests_are_400_and_send_nothing(client, broker, path, body, code):
    response = client.post(path, data=body, content_type="application/json")
    assert (response.status_code, error_of(response)["code"]) == (400, code)
    assert broker.requests == []


def reveal_answer(state: dict):
    from cloudevents.core.bindings.http import to_binary_event
    from werkzeug.wrappers import Response

    from storeplatform.events import new_event

    def reply(_request):
        message = to_binary_event(new_event(
            "io.storeplatform.store.admin-password.reveal.result", "/t", None, state))
        return Response(message.body, status=200, headers=message.headers)
    return reply


@pytest.mark.parametrize(("state", "status", "body"), [
    ({"state": "shown", "name": "store-a", "id": "ev-1", "user": "admin", "password": "pw"},
     200, {"name": "store-a", "id": "ev-1", "user": "admin", "password": "pw"}),
    ({"state": "pending", "name": "store-a", "id": "ev-1", "status": "resetting",
      "progress": "waiting"}, 202,
     {"name": "store-a", "id": "ev-1", "status": "resetting", "progress": "waiting"}),
    ({"state": "failed", "code": "reset_failed", "message": "wp said no"}, 409,
     {"error": {"code": "reset_failed", "message": "wp said no"}}),
    ({"state": "gone", "code": "already_shown", "message": "shown already"}, 410,
     {"error": {"code": "already_shown", "message": "shown already"}}),
])
def test_the_reveal_answers_the_resets_state_and_is_never_cached(broker, state, status, body):
    from tests.helpers import Recorder, receiving

    with receiving(Recorder(reveal_answer(state))) as lister:
        client = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url}).test_client()
        response = client.post("/stores/store-a/admin-password/ev-1", json={})
        sent = received_event(lister)
    assert (response.status_code, response.get_json()) == (status, body)
    assert response.headers["Cache-Control"] == "no-store"
    assert lister.requests[-1]["path"] == "/admin-password"
    assert sent.get_type() == "io.storeplatform.store.admin-password.reveal"
    assert sent.get_data() == {"name": "store-a", "id": "ev-1"}
    assert broker.requests == []  # never through the Broker


def test_metrics_want_the_token_when_the_gateway_has_one(broker, lister):
    app = gateway.create_app({"K_SINK": broker.url, "LIST_URL": lister.url,
                              "GATEWAY_AUTH": "token", "GATEWAY_TOKEN": "t0ken"})
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": "Bearer t0ken"})
    assert scraped.status_code == 200
    assert b"storeplatform_http_requests_total" in scraped.data
    assert client.get("/health").status_code == 200  # probes stay open


def test_requests_are_counted_by_route_and_status(client):
    from prometheus_client import REGISTRY

    def count():
        return REGISTRY.get_sample_value("storeplatform_http_requests_total", {
            "method": "POST", "route": "/stores/<name>", "status": "400"}) or 0

    before = count()
    client.post("/stores/Bad_Name", json={})
    assert count() == before + 1
