"""The gateway's upstreams over real HTTP on 127.0.0.1: the Broker and list-stores."""

import json

import pytest
from cloudevents.core.bindings.http import to_structured_event
from werkzeug.wrappers import Response

from storeplatform import upstream
from storeplatform.errors import Kind, PlatformError
from storeplatform.events import new_event
from tests.helpers import Recorder, free_port, received_event, serve
from tests.unit.conftest import STORES


def test_publish_posts_a_binary_event_from_the_gateway(broker):
    event_id = upstream.publish(broker.url, "io.storeplatform.store.delete", "store-a",
                                {"name": "store-a"}, 5.0)
    event = received_event(broker)
    assert event.get_id() == event_id
    assert (event.get_source(), event.get_subject()) == ("/storeplatform/gateway", "store-a")
    assert "ce-specversion" in {k.lower() for k in broker.requests[-1]["headers"]}


@pytest.mark.parametrize(("status", "kind", "code"), [
    (500, Kind.UPSTREAM_UNAVAILABLE, "sink_unavailable"),
    (503, Kind.UPSTREAM_UNAVAILABLE, "sink_unavailable"),
    (400, Kind.UPSTREAM_REJECTED, "sink_rejected"),
    (404, Kind.UPSTREAM_REJECTED, "sink_rejected"),
])
def test_a_failing_or_refusing_broker(status, kind, code):
    with serve(Recorder(lambda _r: Response(status=status))) as url, \
            pytest.raises(PlatformError) as err:
        upstream.publish(url, "io.storeplatform.store.create", "store-a", {}, 5.0)
    assert (err.value.kind, err.value.code) == (kind, code)


def test_an_unreachable_broker_is_unavailable_and_says_nothing_changed():
    with pytest.raises(PlatformError) as err:
        upstream.publish(f"http://127.0.0.1:{free_port()}/", "io.storeplatform.store.create",
                         "store-a", {}, 1.0)
    assert err.value.kind is Kind.UPSTREAM_UNAVAILABLE
    assert "nothing was changed" in err.value.message


def test_a_broker_that_takes_the_event_but_never_answers_is_a_timeout(silent_server):
    with pytest.raises(PlatformError) as err:
        upstream.publish(silent_server, "io.storeplatform.store.create", "store-a", {}, 0.3)
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_TIMEOUT, "sink_timeout")


@pytest.mark.parametrize("where", ["silent", "closed"])
def test_a_list_stores_that_does_not_answer_is_list_unavailable(silent_server, where):
    url = silent_server if where == "silent" else f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(PlatformError) as err:
        upstream.list_view(url, 0.3)
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_UNAVAILABLE, "list_unavailable")
    assert "list-stores" in err.value.message


def test_list_view_is_the_data_of_list_stores_answer(lister):
    assert json.loads(upstream.list_view(lister.url, 5.0)) == STORES
    assert received_event(lister).get_type() == "io.storeplatform.store.list"


def structured_reply(event_type):
    def reply(_request):
        message = to_structured_event(new_event(event_type, "/t", None, STORES))
        return Response(message.body, status=200, headers=message.headers)
    return reply


def test_a_structured_answer_is_read_for_its_data():
    with serve(Recorder(structured_reply("io.storeplatform.store.list.result"))) as url:
        assert json.loads(upstream.list_view(url, 5.0)) == STORES


def test_an_answer_that_is_no_list_result_is_list_unavailable():
    with serve(Recorder(structured_reply("io.example.other"))) as url, \
            pytest.raises(PlatformError) as err:
        upstream.list_view(url, 5.0)
    assert err.value.code == "list_unavailable"


@pytest.mark.parametrize("status", [400, 404])
def test_list_stores_refusing_is_list_unavailable(status):
    with serve(Recorder(lambda _r: Response(status=status))) as url, \
            pytest.raises(PlatformError) as err:
        upstream.list_view(url, 5.0)
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_UNAVAILABLE, "list_unavailable")


@pytest.mark.parametrize("down", ["unreachable", "5xx"])
def test_list_stores_down_is_list_unavailable_saying_so(down):
    if down == "unreachable":
        with pytest.raises(PlatformError) as err:
            upstream.list_view(f"http://127.0.0.1:{free_port()}/", 1.0)
    else:
        with serve(Recorder(lambda _r: Response(status=503))) as url, \
                pytest.raises(PlatformError) as err:
            upstream.list_view(url, 5.0)
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_UNAVAILABLE, "list_unavailable")
    assert err.value.message.startswith("list-stores is unreachable or failing")
    assert "broker" not in err.value.message
