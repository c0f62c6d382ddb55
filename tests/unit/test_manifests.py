import json
from datetime import UTC, datetime

import pytest

from storeplatform import budget, config, contract, engines, manifests
from storeplatform.lifecycle import provision

SETTINGS = config.load(provision.SETTINGS, {"RUNNER_IMAGE": "storeplatform/helm-runner:dev",
                                            "K_SINK": "http://broker.example/x"}, environ={})
NOW = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)


def test_namespace_has_platform_and_pod_security_labels():
    ns = manifests.namespace("store-a", "woocommerce", NOW)
    labels = ns["metadata"]["labels"]
    assert ns["metadata"]["name"] == "store-a"
    assert labels[contract.LABEL_MANAGED_BY] == "storeplatform"
    assert labels[contract.LABEL_STORE] == "store-a"
    assert labels[contract.LABEL_ENGINE] == "woocommerce"
    assert labels[contract.LABEL_CREATED_AT] == str(int(NOW.timestamp()))
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["annotations"][contract.ANNOTATION_CREATED_AT] == "2026-11-26T16:00:00Z"


def test_credentials_are_random_and_complete():
    first = manifests.credentials_secret("store-a", "woocommerce")["stringData"]
    second = manifests.credentials_secret("store-a", "woocommerce")["stringData"]
    for key in engines.get("woocommerce").credential_keys:
        assert len(first[key]) >= 32
        assert first[key] != second[key]
    assert first["admin-user"] == "admin"


def test_role_binding_binds_runner_in_store_namespace_only():
    rb = manifests.runner_role_binding("store-a", "storeplatform")
    assert rb["kind"] == "RoleBinding"
    assert rb["metadata"]["namespace"] == "store-a"
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "storeplatform-runner"}
    # The store's own runner account: a binding in another store never names it.
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "storeplatform-runner-store-a",
                               "namespace": "storeplatform"}]


def test_runner_account_is_the_stores_own_and_goes_with_its_namespace():
    namespace = {"metadata": {"name": "store-a", "uid": "u-1"}}
    account = manifests.runner_service_account("store-a", "storeplatform", namespace)
    assert account["metadata"]["name"] == "storeplatform-runner-store-a"
    assert account["metadata"]["namespace"] == "storeplatform"
    assert account["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Namespace", "name": "store-a", "uid": "u-1",
        "blockOwnerDeletion": False}]
    assert "secrets" not in account and "imagePullSecrets" not in account


def test_values_secret_carries_chart_values():
    secret = manifests.values_secret("store-a", "woocommerce", "shops.example.com", "storeplatform")
    assert secret["metadata"]["name"] == "helm-install-store-a"
    values = json.loads(secret["stringData"]["values.yaml"])
    assert values == {"storeName": "store-a", "engine": "woocommerce",
                      "existingSecret": "store-credentials",
                      "ingress": {"baseDomain": "shops.example.com"}}


@pytest.mark.parametrize(("action", "name"), [("install", "helm-install-store-a"),
                                              ("delete", "helm-delete-store-a")])
def test_job_is_deterministic_and_labelled(action, name):
    job = manifests.runner_job(action, "store-a", "event-1", SETTINGS)
    assert job["metadata"]["name"] == name
    assert job["metadata"]["namespace"] == "storeplatform"
    assert job["metadata"]["annotations"][contract.ANNOTATION_EVENT_ID] == "event-1"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels[contract.LABEL_COMPONENT] == "helm-runner"
    assert labels[contract.LABEL_STORE] == "store-a"
    assert labels[contract.LABEL_ACTION] == action
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "storeplatform.runner", action]


def test_job_hygiene():
    spec = manifests.runner_job("install", "store-a", "e", SETTINGS)["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == budget.job_deadline_seconds("10m", 2)
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    assert spec["ttlSecondsAfterFinished"] == 3600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "storeplatform-runner-store-a"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_job_spec_holds_no_password_and_values_only_by_reference():
    job = manifests.runner_job("install", "store-a", "e", SETTINGS)
    secret = manifests.credentials_secret("store-a", "woocommerce")
    text = json.dumps(job)
    leaked = [key for key, value in secret["stringData"].items()  # names only, never values
              if key.endswith(("password", "key", "salt")) and value in text]
    assert leaked == []
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STORE_VALUES"] == {"name": "STORE_VALUES", "valueFrom": {"secretKeyRef": {
        "name": "helm-install-store-a", "key": "values.yaml"}}}
    assert all("value" not in e or "password" not in e["value"].lower() for e in env.values())
    assert "args" not in job["spec"]["template"]["spec"]["containers"][0]


def test_delete_job_needs_no_values():
    env = manifests.runner_job("delete", "store-a", "e", SETTINGS)["spec"]["template"]["spec"]
    names = {e["name"] for e in env["containers"][0]["env"]}
    assert "STORE_VALUES" not in names
    assert {"STORE_NAME", "K_SINK"} <= names


def test_the_runner_reaches_the_broker_with_a_token_for_the_broker_only():
    job = manifests.runner_job("install", "store-a", "e", SETTINGS | {"K_SINK": "http://b/"})
    pod = job["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == (
        "eventing.knative.dev/broker/storeplatform/default")
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    path = source["serviceAccountToken"]["path"]
    assert env["BROKER_TOKEN_FILE"] == f"{mount['mountPath']}/{path}"
    assert mount["readOnly"] is True


def test_the_runner_learns_its_request_and_the_reset_its_wp_cli():
    settings = SETTINGS | {"EVENT_ID": "ev-1", "REQUESTED_AT": "2026-01-01T00:00:00Z",
                           "TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01",
                           "RUNNER_WP_CLI": "job"}
    install = {e["name"]: e.get("value") for e in manifests.runner_env("install", "store-a",
                                                                        settings)}
    assert install["EVENT_ID"] == "ev-1" and install["REQUESTED_AT"].endswith("Z")
    assert install["TRACEPARENT"].startswith("00-4bf92f")
    assert "WP_CLI" not in install and "RESET_ID" not in install
    reset = {e["name"]: e.get("value") for e in manifests.runner_env(
        "reset-admin-password", "store-a", settings)}
    assert (reset["RESET_ID"], reset["WP_CLI"]) == ("ev-1", "job")
    assert "STORE_VALUES" not in reset
