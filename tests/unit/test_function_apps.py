"""Validation of create-store, delete-store and list-stores through Flask's test client.

Every case here must be rejected before any Kubernetes call (the clients refuse to be used).
The happy paths run against the real API server in tests/integration/test_platform_flow.py.
"""

import pytest

from storeplatform import create_store, delete_store, list_stores
from tests.helpers import MODES, encode, error_of

RUNNER = {"RUNNER_IMAGE": "storeplatform/helm-runner:dev"}
APPS = {
    "create": (lambda kc: create_store.create_app(RUNNER, clients=kc),
               "io.storeplatform.store.create"),
    "delete": (lambda kc: delete_store.create_app(RUNNER, clients=kc),
               "io.storeplatform.store.delete"),
    "list": (lambda kc: list_stores.create_app({}, clients=kc), "io.storeplatform.store.list"),
}


@pytest.fixture(params=sorted(APPS))
def function(request, untouchable):
    make, event_type = APPS[request.param]
    return make(untouchable).test_client(), event_type


def test_health(function):
    client, _ = function
    assert client.get("/health").get_json() == {"status": "ok"}


@pytest.mark.parametrize(("headers", "body"), [
    ({"Content-Type": "application/json"}, b'{"name": "store-a"}'),
    ({}, b""),
    ({"Content-Type": "text/plain"}, b"hello"),
])
def test_not_a_cloudevent_is_400(function, headers, body):
    client, _ = function
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "not_a_cloudevent"
    assert "binary mode" in error_of(response)["message"]


@pytest.mark.parametrize("mode", MODES)
def test_wrong_event_type_is_400(function, mode):
    client, _ = function
    headers, body = encode("io.storeplatform.store.explode", {"name": "store-a"}, mode)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "unexpected_event_type"


def test_structured_mode_with_broken_json_is_400(function):
    client, _ = function
    response = client.post("/", headers={"Content-Type": "application/cloudevents+json"},
                           data=b"{not json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cloudevent"


def test_binary_mode_missing_required_attributes_is_400(function):
    client, _ = function
    response = client.post("/", headers={"ce-specversion": "1.0", "ce-id": "1",
                                         "Content-Type": "application/json"}, data=b"{}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cloudevent"


def test_oversized_event_is_400(function):
    client, event_type = function
    headers, body = encode(event_type, {"name": "store-a", "pad": "x" * 70000}, "binary")
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "body_too_large"


BAD_STORE_DATA = [
    ({"name": "shop-a"}, 400, "invalid_name"),
    ({"name": "store-A"}, 400, "invalid_name"),
    ({"name": "store-" + "x" * 40}, 400, "invalid_name"),
    ({"name": "store-a", "extra": 1}, 400, "unknown_field"),
    ({"engine": "woocommerce"}, 400, "invalid_name"),
    (["store-a"], 400, "invalid_data"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("data", "status", "code"), BAD_STORE_DATA)
@pytest.mark.parametrize("kind", ["create", "delete"])
def test_bad_store_events_are_rejected_before_kubernetes(untouchable, kind, mode, data, status,
                                                          code):
    make, event_type = APPS[kind]
    headers, body = encode(event_type, data, mode)
    response = make(untouchable).test_client().post("/", headers=headers, data=body)
    assert response.status_code == status
    assert error_of(response)["code"] == code


@pytest.mark.parametrize("mode", MODES)
def test_create_medusa_is_501(untouchable, mode):
    headers, body = encode("io.storeplatform.store.create",
                           {"name": "store-a", "engine": "medusa"}, mode)
    response = create_store.create_app(RUNNER, clients=untouchable).test_client().post(
        "/", headers=headers, data=body)
    assert response.status_code == 501
    assert "not available yet" in error_of(response)["message"]


@pytest.mark.parametrize("mode", MODES)
def test_create_subject_must_match(untouchable, mode):
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, mode,
                           subject="store-b")
    response = create_store.create_app(RUNNER, clients=untouchable).test_client().post(
        "/", headers=headers, data=body)
    assert error_of(response)["code"] == "subject_mismatch"


@pytest.mark.parametrize("mode", MODES)
def test_list_with_data_fields_is_400(untouchable, mode):
    headers, body = encode("io.storeplatform.store.list", {"filter": "x"}, mode)
    response = list_stores.create_app({}, clients=untouchable).test_client().post(
        "/", headers=headers, data=body)
    assert response.status_code == 400


@pytest.mark.parametrize("make", [create_store.create_app, delete_store.create_app])
def test_missing_runner_image_fails_at_start_naming_it(make, monkeypatch):
    monkeypatch.delenv("RUNNER_IMAGE", raising=False)
    with pytest.raises(Exception, match="RUNNER_IMAGE"):
        make({}, clients=object())


def test_dead_letter_record_and_event_name_the_failure():
    import base64

    from cloudevents.core.v1.event import CloudEvent

    event = CloudEvent(attributes={
        "type": "io.storeplatform.store.create", "source": "/t", "id": "e-1",
        "subject": "store-a", "knativeerrorcode": "500",
        "knativeerrordest": "http://create-store", "knativeerrordata":
            base64.b64encode(b"boom").decode()}, data={"name": "store-a"})
    record = list_stores.dead_letter_record(event)
    assert record["id"] == "e-1" and record["subject"] == "store-a"
    assert record["error"] == "HTTP 500 from http://create-store boom"
    kube_event = list_stores.kube_event(record, "storeplatform")
    assert kube_event["metadata"]["namespace"] == "storeplatform"
    assert kube_event["involvedObject"]["namespace"] == "storeplatform"
    assert list_stores.dead_letters([kube_event]) == [record]


def test_unreachable_kubernetes_api_is_a_retryable_503(tmp_path):
    """A real client against a closed port on 127.0.0.1: the Broker must retry, not drop."""
    from tests.helpers import free_port

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{free_port()}",
                                  insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: not-a-real-token}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
""")
    app = create_store.create_app(RUNNER | {"KUBECONFIG": str(kubeconfig), "KUBE_TIMEOUT": 2.0})
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, "binary")
    response = app.test_client().post("/", headers=headers, data=body)
    assert response.status_code == 503
    assert error_of(response)["code"] == "kubernetes_unavailable"
