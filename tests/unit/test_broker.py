"""The local event router: Trigger parsing, and delivery to real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import textwrap
import time
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from devstack import broker
from devstack.triggers import (
    Delivery,
    Destination,
    ManifestError,
    load_triggers,
    parse_duration,
)
from storeplatform.config import ConfigError
from tests.helpers import Recorder, encode, free_port, serve

ROOT = Path(__file__).resolve().parents[2]
INGRESS = "/storeplatform/default"
CREATE = "io.storeplatform.store.create"
DELAY = 0.05  # backoffDelay override: exponential gives 0.05, 0.1, 0.2 ...


def manifests(tmp_path: Path, triggers: str, broker_spec: str = "") -> Path:
    """A knative/ directory with the default Broker and the given Trigger documents."""
    (tmp_path / "300-broker.yaml").write_text(textwrap.dedent("""\
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        metadata: {name: default, namespace: storeplatform}
        """) + textwrap.dedent(broker_spec))
    (tmp_path / "500-triggers.yaml").write_text(textwrap.dedent(triggers))
    return tmp_path


def trigger_doc(name: str, event_type: str, subscriber: str, retry: int = 3,
                policy: str = "exponential") -> str:
    return textwrap.dedent(f"""\
        ---
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {{name: {name}, namespace: storeplatform}}
        spec:
          broker: default
          filter: {{attributes: {{type: {event_type}}}}}
          subscriber:
            ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: {subscriber}}}
          delivery:
            retry: {retry}
            backoffPolicy: {policy}
            backoffDelay: PT1S
            timeout: PT2S
            deadLetterSink:
              ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: sink}}
              uri: /dead-letter
        """)


class Timed(Recorder):
    """A Recorder that also notes when each request arrived and answers from a script."""

    def __init__(self, statuses: list[int] | None = None, body: bytes = b"",
                 headers: dict[str, str] | None = None) -> None:
        self.times: list[float] = []
        self.statuses = list(statuses or [])

        def reply(_req: Request) -> Response:
            self.times.append(time.monotonic())
            status = self.statuses.pop(0) if self.statuses else 202
            return Response(body, status=status, headers=headers or {})

        super().__init__(reply)


def router_app(knative_dir: Path, subscribers: dict[str, str], **settings):
    return broker.create_app({"KNATIVE_DIR": str(knative_dir),
                              "BROKER_SUBSCRIBERS": subscribers,
                              "BROKER_BACKOFF_DELAY": DELAY, **settings})


def post(app, event_type: str = CREATE, mode: str = "binary", data=None, path: str = INGRESS,
         subject: str = "store-a", event_id: str = "ev-1"):
    headers, body = encode(event_type, data if data is not None else {"name": "store-a"},
                           mode, subject=subject, event_id=event_id)
    return app.test_client().post(path, headers=headers, data=body)


def settle(app, timeout: float = 10.0) -> None:
    assert app.extensions["router"].join(timeout), "deliveries still in flight"


# ---------------------------------------------------------------- parsing knative/


def test_load_triggers_reads_the_shipped_manifests():
    triggers = {t.name: t for t in load_triggers(ROOT / "knative")}
    assert set(triggers) == {"create-store", "delete-store"}
    create = triggers["create-store"]
    assert create.attributes == {"type": CREATE}
    assert create.subscriber == Destination(service="create-store")
    assert create.delivery == Delivery(retry=5, backoff_policy="exponential", backoff_delay=1.0,
                                       timeout=60.0, format="binary",
                                       dead_letter=Destination("list-stores", "/dead-letter"))
    assert triggers["delete-store"].attributes == {"type": "io.storeplatform.store.delete"}


@pytest.mark.parametrize(("text", "seconds"), [
    ("PT1S", 1.0), ("PT0.5S", 0.5), ("PT1M30S", 90.0), ("PT2H", 7200.0), ("P1D", 86400.0),
    ("P1DT1S", 86401.0), ("P1W", 604800.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1s", "P", "PT", "PT1", "P1DT", "PTS", "-PT1S"])
def test_parse_duration_rejects_non_iso(text):
    with pytest.raises(ManifestError):
        parse_duration(text)


def test_backoff_is_delay_times_two_to_the_retry_index():
    exponential = Delivery(retry=5, backoff_policy="exponential", backoff_delay=1.0)
    assert [exponential.backoff(i) for i in range(5)] == [1, 2, 4, 8, 16]
    linear = Delivery(retry=3, backoff_policy="linear", backoff_delay=2.0)
    assert [linear.backoff(i) for i in range(3)] == [0, 2, 4]


def test_a_trigger_without_delivery_uses_its_brokers(tmp_path):
    knative = manifests(tmp_path, """\
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {name: t, namespace: storeplatform}
        spec:
          broker: default
          subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: a}}
        """, broker_spec="""\
        spec:
          delivery: {retry: 2, backoffPolicy: linear, backoffDelay: PT3S}
        """)
    (trigger,) = load_triggers(knative)
    assert trigger.delivery == Delivery(retry=2, backoff_policy="linear", backoff_delay=3.0)
    assert trigger.matches({"type": "anything"})  # no filter: every event


def test_filters_dialects_win_over_filter(tmp_path):
    knative = manifests(tmp_path, """\
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {name: t, namespace: storeplatform}
        spec:
          filter: {attributes: {type: never.used}}
          filters:
            - prefix: {type: io.storeplatform.store.}
            - not: {any: [{suffix: {type: .list}}, {exact: {subject: store-x}}]}
          subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: a}}
        """)
    (trigger,) = load_triggers(knative)
    assert trigger.matches({"type": CREATE, "subject": "store-a"})
    assert not trigger.matches({"type": "io.storeplatform.store.list"})
    assert not trigger.matches({"type": CREATE, "subject": "store-x"})
    assert not trigger.matches({"type": "never.used"})


@pytest.mark.parametrize("trigger_spec", [
    "filters: [{cesql: \"type = 'x'\"}]",
    "subscriber: {ref: {apiVersion: v1, kind: Pod, name: a}}",
    "delivery: {backoffPolicy: quadratic}",
])
def test_unsupported_trigger_specs_are_refused_at_load(tmp_path, trigger_spec):
    subscriber = "" if "subscriber" in trigger_spec else (
        "  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: a}}\n")
    knative = manifests(tmp_path, "apiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                        "metadata: {name: t, namespace: storeplatform}\nspec:\n"
                        f"  {trigger_spec}\n{subscriber}")
    with pytest.raises(ManifestError, match="Trigger t"):
        load_triggers(knative)


# ---------------------------------------------------------------- configuration


def test_every_referenced_service_needs_a_local_url():
    with pytest.raises(ConfigError, match="list-stores"):
        broker.create_app({"KNATIVE_DIR": str(ROOT / "knative"),
                           "BROKER_SUBSCRIBERS": "create-store=http://127.0.0.1:1,"
                                                 "delete-store=http://127.0.0.1:2"})


@pytest.mark.parametrize("value", [
    "create-store=http://10.0.0.5:8080", "create-store=http://example.invalid/",
    "create-store", "create-store=file:///etc/passwd",
])
def test_subscribers_must_be_loopback_http(value):
    with pytest.raises(ConfigError, match="BROKER_SUBSCRIBERS"):
        broker.parse_subscribers(value)


def test_subscribers_from_the_environment_string():
    assert broker.parse_subscribers(" a=http://127.0.0.1:1 ,b=http://localhost:2/x,") == {
        "a": "http://127.0.0.1:1", "b": "http://localhost:2/x"}


def test_resolve_joins_the_service_url_and_the_relative_uri():
    subs = {"list-stores": "http://127.0.0.1:9/"}
    assert broker.resolve(Destination("list-stores", "/dead-letter"), subs) == \
        "http://127.0.0.1:9/dead-letter"
    assert broker.resolve(Destination("list-stores"), subs) == "http://127.0.0.1:9/"


# ---------------------------------------------------------------- the ingress


@pytest.fixture
def quiet_app(tmp_path):
    """A router whose subscribers are closed ports (nothing is delivered successfully)."""
    knative = manifests(tmp_path, trigger_doc("t", CREATE, "a", retry=0))
    port = f"http://127.0.0.1:{free_port()}"
    return router_app(knative, {"a": port, "sink": port})


def test_health(quiet_app):
    assert quiet_app.test_client().get("/health").get_json() == {"status": "ok"}


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_ingress_accepts_both_modes_with_202(quiet_app, mode):
    assert post(quiet_app, mode=mode).status_code == 202
    settle(quiet_app)


def test_ingress_refuses_what_is_not_a_cloudevent(quiet_app):
    response = quiet_app.test_client().post(INGRESS, json={"name": "store-a"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cloudevent"
    incomplete = quiet_app.test_client().post(
        INGRESS, headers={"ce-specversion": "1.0", "ce-type": CREATE}, data=b"{}")
    assert incomplete.status_code == 400


def test_ingress_only_serves_brokers_of_the_manifests(quiet_app):
    assert post(quiet_app, path="/storeplatform/other").status_code == 404
    assert quiet_app.test_client().get(INGRESS).status_code == 405


# ---------------------------------------------------------------- delivery


@pytest.fixture
def sink():
    recorder = Timed()
    with serve(recorder) as url:
        recorder.url = url
        yield recorder


def test_delivers_in_binary_mode_to_the_matching_trigger_only(tmp_path, sink):
    create, delete = Timed(), Timed()
    with serve(create) as create_url, serve(delete) as delete_url:
        knative = manifests(tmp_path, trigger_doc("c", CREATE, "create")
                            + trigger_doc("d", "io.storeplatform.store.delete", "delete"))
        app = router_app(knative, {"create": create_url, "delete": delete_url,
                                   "sink": sink.url})
        assert post(app, mode="structured", event_id="ev-42").status_code == 202
        settle(app)
    assert len(create.requests) == 1 and not delete.requests and not sink.requests
    headers = {k.lower(): v for k, v in create.requests[0]["headers"].items()}
    assert headers["ce-id"] == "ev-42"
    assert headers["ce-type"] == CREATE
    assert headers["ce-subject"] == "store-a"
    assert headers["content-type"] == "application/json"
    assert "ce-knativearrivaltime" in headers
    assert json.loads(create.requests[0]["body"]) == {"name": "store-a"}


def test_events_matching_no_trigger_are_dropped(tmp_path, sink, caplog):
    subscriber = Timed()
    with serve(subscriber) as url:
        app = router_app(manifests(tmp_path, trigger_doc("c", CREATE, "create")),
                         {"create": url, "sink": sink.url})
        with caplog.at_level("INFO", logger="devstack.broker"):
            assert post(app, event_type="io.storeplatform.store.ready").status_code == 202
        settle(app)
    assert not subscriber.requests and not sink.requests
    assert "matches no Trigger; dropped" in caplog.text


def test_retries_with_exponential_backoff_until_success(tmp_path, sink):
    subscriber = Timed([503, 500, 429])
    with serve(subscriber) as url:
        app = router_app(manifests(tmp_path, trigger_doc("c", CREATE, "create", retry=5)),
                         {"create": url, "sink": sink.url})
        post(app)
        settle(app)
    assert len(subscriber.requests) == 4  # three failures, then 202
    gaps = [b - a for a, b in zip(subscriber.times, subscriber.times[1:], strict=False)]
    for index, gap in enumerate(gaps):
        assert gap >= DELAY * 2 ** index * 0.9, gaps  # 0.05, 0.1, 0.2 s
    assert gaps[2] > gaps[0] * 2.5, gaps
    assert not sink.requests
    ids = {r["headers"].get("Ce-Id") for r in subscriber.requests}
    assert ids == {"ev-1"}  # the same event every time


def test_exhausted_retries_go_to_the_dead_letter_sink_with_knative_error_extensions(
        tmp_path, sink):
    subscriber = Timed([500] * 10, body=b'{"error": "boom"}')
    with serve(subscriber) as url:
        app = router_app(manifests(tmp_path, trigger_doc("c", CREATE, "create", retry=2)),
                         {"create": url, "sink": sink.url})
        post(app, event_id="ev-dead")
        settle(app)
    assert len(subscriber.requests) == 3  # 1 + retry 2
    (letter,) = sink.requests
    headers = {k.lower(): v for k, v in letter["headers"].items()}
    assert letter["path"] == "/dead-letter"
    assert headers["ce-id"] == "ev-dead"
    assert headers["ce-type"] == CREATE
    assert headers["ce-knativeerrorcode"] == "500"
    assert headers["ce-knativeerrordest"] == url
    assert base64.b64decode(headers["ce-knativeerrordata"]) == b'{"error": "boom"}'
    assert json.loads(letter["body"]) == {"name": "store-a"}


@pytest.mark.parametrize(("status", "attempts"), [(400, 1), (422, 1), (404, 3), (409, 3),
                                                  (408, 3)])
def test_which_answers_are_retried(tmp_path, sink, status, attempts):
    subscriber = Timed([status] * 10)
    with serve(subscriber) as url:
        app = router_app(manifests(tmp_path, trigger_doc("c", CREATE, "create", retry=2)),
                         {"create": url, "sink": sink.url})
        post(app)
        settle(app)
    assert len(subscriber.requests) == attempts
    (letter,) = sink.requests
    assert letter["headers"]["Ce-Knativeerrorcode"] == str(status)


def test_connection_errors_are_retried_then_dead_lettered(tmp_path, sink):
    closed = f"http://127.0.0.1:{free_port()}"
    app = router_app(manifests(tmp_path, trigger_doc("c", CREATE, "create", retry=2)),
                     {"create": closed, "sink": sink.url})
    started = time.monotonic()
    post(app)
    settle(app)
    assert time.monotonic() - started >= DELAY * 3 * 0.9  # waited 0.05 + 0.1 between tries
    (letter,) = sink.requests
    assert letter["headers"]["Ce-Knativeerrorcode"] == "-1"
    assert letter["headers"]["Ce-Knativeerrordest"] == closed


def test_a_slow_subscriber_times_out_and_is_retried(tmp_path, sink):
    calls: list[float] = []

    def slow(environ, start_response):
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(1.5)
        return Response(status=202)(environ, start_response)

    with serve(slow) as url:
        knative = manifests(tmp_path, trigger_doc("c", CREATE, "create", retry=2).replace(
            "timeout: PT2S", "timeout: PT0.3S"))
        app = router_app(knative, {"create": url, "sink": sink.url})
        post(app)
        settle(app)
    assert len(calls) == 2
    assert calls[1] - calls[0] < 1.0  # the retry did not wait for the slow answer
    assert not sink.requests


def test_a_reply_event_goes_back_into_the_broker(tmp_path, sink):
    ready = Timed()
    reply_headers = {"ce-specversion": "1.0", "ce-id": "reply-1", "ce-source": "/create",
                     "ce-type": "io.storeplatform.store.ready", "ce-subject": "store-a",
                     "Content-Type": "application/json"}
    create = Timed([200], body=b'{"name": "store-a"}', headers=reply_headers)
    with serve(create) as create_url, serve(ready) as ready_url:
        knative = manifests(tmp_path, trigger_doc("c", CREATE, "create")
                            + trigger_doc("r", "io.storeplatform.store.ready", "ready"))
        app = router_app(knative, {"create": create_url, "ready": ready_url, "sink": sink.url})
        post(app)
        settle(app)
        settle(app)  # the reply's own delivery starts from the first one's thread
    (delivered,) = ready.requests
    assert delivered["headers"]["Ce-Id"] == "reply-1"


def test_stop_abandons_pending_retries(tmp_path, sink):
    subscriber = Timed([503] * 10)
    with serve(subscriber) as url:
        knative = manifests(tmp_path, trigger_doc("c", CREATE, "create", retry=5))
        app = router_app(knative, {"create": url, "sink": sink.url},
                         BROKER_BACKOFF_DELAY=30.0)
        post(app)
        deadline = time.monotonic() + 5
        while not subscriber.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        app.extensions["router"].stop()
        settle(app, timeout=2.0)
    assert len(subscriber.requests) == 1
    assert not sink.requests
