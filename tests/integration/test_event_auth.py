"""Authentic events on the real Knative Eventing of `make dev` (OIDC on, EventPolicies of
knative/315): only the gateway and the runners post to the Broker, only the Broker
delivers to the functions. Foreign senders, with no token, a token for another audience or
a valid token of another identity, are refused, and nothing they sent is handled.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.helpers import encode

pytestmark = pytest.mark.integration

NS = "storeplatform"
BROKER_AUDIENCE = f"eventing.knative.dev/broker/{NS}/default"


def audience(service: str) -> str:
    return f"serving.knative.dev/service/{NS}/{service}"


@pytest.fixture(scope="module")
def admin(devstack):
    return config.new_client_from_config(config_file=devstack["kubeconfig"])


def account(admin, namespace: str, name: str) -> None:
    try:
        client.CoreV1Api(admin).create_namespaced_service_account(
            namespace, {"metadata": {"name": name}}, _request_timeout=10)
    except ApiException as err:
        if err.status != 409:
            raise


def token_of(admin, namespace: str, name: str, aud: str) -> str:
    answer = client.CoreV1Api(admin).create_namespaced_service_account_token(
        name, namespace, {"spec": {"audiences": [aud], "expirationSeconds": 600}},
        _request_timeout=10)
    return answer.status.token


def post(url: str, event_type: str, data: dict, token: str | None, event_id: str,
         subject: str | None = None) -> int:
    headers, body = encode(event_type, data, "binary", subject=subject, event_id=event_id)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def handled(devstack: dict, function: str, event_id: str) -> bool:
    log = Path(devstack["state_dir"]) / "logs" / f"{function}.log"
    return f"event {event_id} " in log.read_text()


def gateway_token(devstack: dict, target: str) -> str:
    return (Path(devstack["state_dir"]) / "tokens" / f"gateway-{target}").read_text()


def test_only_admitted_senders_post_to_the_broker(devstack, admin):
    account(admin, "default", "intruder")
    account(admin, NS, "storeplatform-runner-store-auth-probe")  # as a runner's would be
    create = {"name": "store-auth-probe"}
    cases = [
        ("no token", None, "io.storeplatform.store.create", 401),
        ("token for another audience",
         token_of(admin, "default", "intruder", audience("create-store")),
         "io.storeplatform.store.create", 401),
        ("a pod's own API token", token_of(admin, "default", "intruder",
                                           "https://kubernetes.default.svc.cluster.local"),
         "io.storeplatform.store.create", 401),
        ("a foreign ServiceAccount", token_of(admin, "default", "intruder", BROKER_AUDIENCE),
         "io.storeplatform.store.create", 403),
        ("create-store's own identity",
         token_of(admin, NS, "storeplatform-create-store", BROKER_AUDIENCE),
         "io.storeplatform.store.create", 403),
        ("a runner asking for a create",
         token_of(admin, NS, "storeplatform-runner-store-auth-probe", BROKER_AUDIENCE),
         "io.storeplatform.store.create", 403),
    ]
    answers = {}
    for what, token, event_type, _ in cases:
        event_id = f"broker-auth-{what.replace(' ', '-')}"
        answers[what] = post(devstack["broker"], event_type, create, token, event_id,
                             subject=create["name"])
    print("\nBroker ingress answers:", answers)
    assert answers == {what: status for what, _, _, status in cases}
    # The admitted ones: a runner announcing an outcome, the gateway asking for a store.
    runner = token_of(admin, NS, "storeplatform-runner-store-auth-probe", BROKER_AUDIENCE)
    assert post(devstack["broker"], "io.storeplatform.store.ready", create, runner,
                "broker-auth-runner-ready", subject=create["name"]) == 202
    time.sleep(3)  # the channel dispatches synchronously; give stragglers a moment anyway
    assert not [what for what, *_ in cases
                if handled(devstack, "create-store", f"broker-auth-{what.replace(' ', '-')}")]


def test_only_the_broker_delivers_to_the_functions(devstack, admin):
    account(admin, "default", "intruder")
    create = {"name": "store-auth-direct"}
    url = devstack["create-store"]
    cases = {
        "no token": None,
        "the gateway's token for the Broker": gateway_token(devstack, "broker"),
        "a foreign ServiceAccount": token_of(admin, "default", "intruder",
                                             audience("create-store")),
        "the delete Trigger's identity": token_of(
            admin, NS, "delete-store-oidc-eventing.knative.dev-trigger", audience("create-store")),
        "the create Trigger for another audience": token_of(
            admin, NS, "create-store-oidc-eventing.knative.dev-trigger", audience("delete-store")),
    }
    answers = {what: post(url, "io.storeplatform.store.create", create, token,
                          f"direct-{i}", subject=create["name"])
               for i, (what, token) in enumerate(cases.items())}
    print("\ncreate-store answers:", answers)
    assert answers == {"no token": 401, "the gateway's token for the Broker": 401,
                       "a foreign ServiceAccount": 403, "the delete Trigger's identity": 403,
                       "the create Trigger for another audience": 401}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(admin).read_namespace("store-auth-direct", _request_timeout=10)
    assert err.value.status == 404


def test_dead_letters_cannot_be_faked_and_lists_come_from_the_gateway(devstack, admin):
    account(admin, "default", "intruder")
    base = devstack["list-stores"]
    letter = {"name": "store-auth-fake"}
    fakes = {
        "no token": None,
        "the gateway's list token": gateway_token(devstack, "list-stores"),
        "a foreign ServiceAccount": token_of(admin, "default", "intruder",
                                             audience("list-stores")),
    }
    answers = {what: post(base + "/dead-letter", "io.storeplatform.store.create", letter,
                          token, f"fake-letter-{i}")
               for i, (what, token) in enumerate(fakes.items())}
    assert answers == {"no token": 401, "the gateway's list token": 403,
                       "a foreign ServiceAccount": 403}
    foreign_list = post(base, "io.storeplatform.store.list", {},
                        fakes["a foreign ServiceAccount"], "foreign-list")
    assert foreign_list == 403
    assert post(base, "io.storeplatform.store.list", {},
                gateway_token(devstack, "list-stores"), "gateway-list") == 200
