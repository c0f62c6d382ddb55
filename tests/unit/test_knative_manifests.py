"""Invariants of the knative/ manifests that a schema cannot see.

Server-side validation against the real CRDs is tests/integration/test_knative_validation.py;
this module checks the platform's own rules: routes, delivery policy, concurrency, security.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import deploy
from storeplatform import config, contract, create_store, delete_store, gateway, list_stores

KNATIVE = Path(__file__).resolve().parents[2] / "knative"
FILES = sorted(KNATIVE.glob("*.yaml"))
DOCS: list[tuple[str, dict[str, Any]]] = [
    (path.name, doc) for path in FILES for doc in yaml.safe_load_all(path.read_text()) if doc
]
SERVING = "serving.knative.dev/v1"
REACTED_TO = {contract.CREATE: "create-store", contract.DELETE: "delete-store",  # docs/contract.md
              contract.RESET_ADMIN_PASSWORD: "create-store"}
# Routes by source rather than type: everything the runner reports goes to one receiver.
BY_SOURCE = {contract.RUNNER_SOURCE: ("list-stores", "/lifecycle")}
FUNCTION_SETTINGS = {"gateway": gateway.SETTINGS, "create-store": create_store.SETTINGS,
                     "delete-store": delete_store.SETTINGS, "list-stores": list_stores.SETTINGS}
RUNTIME_ENV = {"K_SINK"}  # injected by the SinkBindings, never written in a Service
PROCESS_ENV = {"PROMETHEUS_MULTIPROC_DIR"}  # read by gunicorn_conf and prometheus-client


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(kind)}


SERVICES = {name: doc for name, doc in by_name("Service").items()
            if doc["apiVersion"] == SERVING}


def container(service: dict[str, Any]) -> dict[str, Any]:
    (only,) = service["spec"]["template"]["spec"]["containers"]
    return only


def gunicorn_option(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


# ---------------------------------------------------------------- files


def test_files_are_numbered_in_apply_order():
    assert FILES, "knative/ is empty"
    for path in FILES:
        assert re.fullmatch(r"\d{3}-[a-z0-9-]+\.yaml", path.name), path.name


def test_every_object_is_named_and_platform_scoped():
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding",
                      "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for file_name, doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind"), file_name
        meta = doc["metadata"]
        assert meta.get("name"), file_name
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in meta, (file_name, meta["name"])
        else:
            assert meta.get("namespace") == contract.PLATFORM_NAMESPACE, (file_name, meta["name"])


def test_the_namespace_comes_first_and_enforces_restricted():
    _, first = DOCS[0]
    assert first["kind"] == "Namespace" and first["metadata"]["name"] == contract.PLATFORM_NAMESPACE
    assert first["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def references(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of the objects a Knative object needs Ready before it is Ready."""
    spec = doc.get("spec") or {}
    dead_letter = ((spec.get("delivery") or {}).get("deadLetterSink") or {}).get("ref")
    refs = [dead_letter] if dead_letter else []
    if doc["kind"] == "Trigger":
        refs += [{"kind": "Broker", "name": spec["broker"]}, spec["subscriber"]["ref"]]
    if doc["kind"] == "SinkBinding":
        refs.append(spec["sink"]["ref"])
    return [(ref["kind"], ref["name"]) for ref in refs]


def test_every_file_is_all_knative_or_none():
    """up.sh and devstack.deploy wait per file: a file mixes no other kinds in."""
    for path in FILES:
        docs = [d for n, d in DOCS if n == path.name]
        assert len({deploy.is_knative(d) for d in docs}) == 1, path.name


def test_every_wait_can_end_in_file_order():
    """Applied file by file with up.sh's waits, nothing waits for an object not yet applied:
    the dead-letter sink before the Broker, the Broker before the SinkBindings and Triggers,
    the subscribers before the Triggers."""
    order = [path.name for path in FILES]
    where = {(d["kind"], d["metadata"]["name"]): order.index(n) for n, d in DOCS}
    for file_name, doc in DOCS:
        for ref in references(doc):
            assert ref in where, (file_name, ref)
            assert where[ref] < order.index(file_name), (file_name, doc["kind"], ref)


def test_sinkbindings_come_before_the_services_they_bind_and_are_waited_for_last():
    order = [path.name for path in FILES]
    services = {d["metadata"]["name"]: order.index(n) for n, d in DOCS
                if d["apiVersion"] == SERVING}
    for file_name, doc in DOCS:
        if doc["kind"] == "SinkBinding":
            assert order.index(file_name) < services[doc["spec"]["subject"]["name"]], file_name
            assert "SinkBinding" in deploy.WAITED_LAST
            assert not deploy.waits_after([doc])


# ---------------------------------------------------------------- Triggers


def test_one_trigger_per_reacted_event_type_and_one_for_the_runners_reports():
    by_type = [t for t in of_kind("Trigger") if "type" in t["spec"]["filter"]["attributes"]]
    routes = {t["spec"]["filter"]["attributes"]["type"]: t["spec"]["subscriber"]["ref"]["name"]
              for t in by_type}
    assert routes == REACTED_TO
    by_source = {t["spec"]["filter"]["attributes"]["source"]: (
        t["spec"]["subscriber"]["ref"]["name"], t["spec"]["subscriber"]["uri"])
        for t in of_kind("Trigger") if "source" in t["spec"]["filter"]["attributes"]}
    assert by_source == BY_SOURCE
    assert len(of_kind("Trigger")) == len(REACTED_TO) + len(BY_SOURCE)


def test_the_reset_trigger_targets_create_stores_reset_route():
    (trigger,) = [t for t in of_kind("Trigger") if t["spec"]["filter"]["attributes"].get(
        "type") == contract.RESET_ADMIN_PASSWORD]
    assert trigger["spec"]["subscriber"]["uri"] == "/admin-password"


@pytest.mark.parametrize("trigger", of_kind("Trigger"), ids=lambda t: t["metadata"]["name"])
def test_trigger_filters_on_one_known_attribute_and_targets_a_service_here(trigger):
    spec = trigger["spec"]
    assert spec["broker"] in by_name("Broker")
    ((attribute, value),) = spec["filter"]["attributes"].items()
    assert value in (REACTED_TO if attribute == "type" else BY_SOURCE)
    ref = spec["subscriber"]["ref"]
    assert ref["apiVersion"] == SERVING and ref["kind"] == "Service"
    assert ref["name"] in SERVICES


@pytest.mark.parametrize("trigger", of_kind("Trigger"), ids=lambda t: t["metadata"]["name"])
def test_trigger_delivery_retries_with_exponential_backoff_into_a_dead_letter_sink(trigger):
    delivery = trigger["spec"]["delivery"]
    assert delivery["retry"] >= 3
    assert delivery["backoffPolicy"] == "exponential"
    assert re.fullmatch(r"PT\d+(\.\d+)?S", delivery["backoffDelay"])
    sink = delivery["deadLetterSink"]
    assert sink["ref"] == {"apiVersion": SERVING, "kind": "Service", "name": "list-stores"}
    assert sink["uri"] == "/dead-letter"


def test_every_trigger_filter_carries_a_comment():
    text = (KNATIVE / "500-triggers.yaml").read_text().splitlines()
    filters = [i for i, line in enumerate(text) if line.strip() == "filter:"]
    assert len(filters) == len(of_kind("Trigger"))
    for i in filters:
        assert text[i - 1].strip().startswith("#"), f"no comment above line {i + 1}"


# ---------------------------------------------------------------- Knative Services


def test_the_four_services():
    assert set(SERVICES) == set(FUNCTION_SETTINGS)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_container_concurrency_matches_gunicorn_workers_times_threads(name):
    spec = SERVICES[name]["spec"]["template"]["spec"]
    args = container(SERVICES[name])["args"]
    workers = int(gunicorn_option(args, "--workers"))
    threads = int(gunicorn_option(args, "--threads"))
    assert spec["containerConcurrency"] == workers * threads


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_runs_its_module_under_gunicorn_on_8080(name):
    box = container(SERVICES[name])
    assert box["command"] == ["gunicorn"]
    assert gunicorn_option(box["args"], "--bind") == "0.0.0.0:8080"
    assert box["args"][-1] == f"storeplatform.{name.replace('-', '_')}:create_app()"
    assert box["ports"] == [{"name": "http1", "containerPort": 8080}]
    # gunicorn must outlive Knative's request timeout, or it kills busy workers first.
    timeout = SERVICES[name]["spec"]["template"]["spec"]["timeoutSeconds"]
    assert int(gunicorn_option(box["args"], "--timeout")) > timeout


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_has_probes_resources_and_scale_bounds(name):
    template = SERVICES[name]["spec"]["template"]
    box = container(SERVICES[name])
    assert box["readinessProbe"]["httpGet"]["path"] == "/health"
    assert box["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= set(box["resources"]["requests"])
    assert "memory" in box["resources"]["limits"]
    notes = template["metadata"]["annotations"]
    low = int(notes["autoscaling.knative.dev/min-scale"])
    high = int(notes["autoscaling.knative.dev/max-scale"])
    assert 0 <= low <= high
    if name in ("gateway", "list-stores"):  # the dashboard never waits for a cold start
        assert low >= 1


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_container_is_restricted(name):
    security = container(SERVICES[name])["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_images_are_placeholders_without_a_registry_host(name):
    image = container(SERVICES[name])["image"]
    assert image == "storeplatform/functions:dev"
    first = image.split("/")[0]
    assert "." not in first and ":" not in first


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_env_is_what_the_function_reads(name):
    """A typo in an env name would silently fall back to a default; catch it here."""
    settings = FUNCTION_SETTINGS[name]
    env = {e["name"] for e in container(SERVICES[name]).get("env", [])}
    assert env - PROCESS_ENV <= set(settings), env - set(settings) - PROCESS_ENV
    required = {key for key, default in settings.items() if default is config.REQUIRED}
    assert required <= env | RUNTIME_ENV, required - env - RUNTIME_ENV


def test_sinkbindings_give_k_sink_to_every_function_that_needs_it():
    bound = {b["spec"]["subject"]["name"] for b in of_kind("SinkBinding")}
    need = {name for name, settings in FUNCTION_SETTINGS.items() if "K_SINK" in settings}
    assert need <= bound
    for binding in of_kind("SinkBinding"):
        assert binding["spec"]["subject"]["apiVersion"] == SERVING
        assert binding["spec"]["sink"]["ref"]["kind"] == "Broker"
        assert binding["spec"]["sink"]["ref"]["name"] in by_name("Broker")


def test_gateway_lists_straight_from_list_stores():
    env = {e["name"]: e.get("value") for e in container(SERVICES["gateway"])["env"]}
    assert env["LIST_URL"] == "http://list-stores.storeplatform.svc.cluster.local"


def test_only_the_gateway_is_reachable_from_outside():
    for name, service in SERVICES.items():
        visibility = service["metadata"].get("labels", {}).get(
            "networking.knative.dev/visibility")
        assert (visibility is None) == (name == "gateway"), name


# ---------------------------------------------------------------- RBAC


def bindings() -> list[dict[str, Any]]:
    return of_kind("RoleBinding") + of_kind("ClusterRoleBinding")


def test_every_service_runs_as_its_own_service_account():
    accounts = by_name("ServiceAccount")
    for name, service in SERVICES.items():
        assert service["spec"]["template"]["spec"]["serviceAccountName"] == \
            f"storeplatform-{name}"
    # No shared runner account: each store gets its own (lifecycle/identity.py).
    assert set(accounts) == {f"storeplatform-{n}" for n in SERVICES}


def test_gateway_has_no_token_and_no_rights():
    account = by_name("ServiceAccount")["storeplatform-gateway"]
    assert account["automountServiceAccountToken"] is False
    assert SERVICES["gateway"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    for binding in bindings():
        assert all(s["name"] != "storeplatform-gateway" for s in binding["subjects"])


def test_nothing_is_bound_to_builtin_superuser_roles():
    for binding in bindings():
        assert binding["roleRef"]["name"] not in {"cluster-admin", "admin", "edit"}
        assert binding["roleRef"]["name"].startswith("storeplatform-")


def test_no_wildcards_and_no_escalation_verbs():
    for role in of_kind("ClusterRole") + of_kind("Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (role["metadata"]["name"], rule)
            assert "escalate" not in rule["verbs"] and "impersonate" not in rule["verbs"]
            if "bind" in rule["verbs"]:
                assert rule["resourceNames"] == [contract.RUNNER_NAME], role["metadata"]["name"]


def test_the_runner_role_is_never_bound_cluster_wide():
    for binding in of_kind("ClusterRoleBinding"):
        assert binding["roleRef"]["name"] != contract.RUNNER_NAME
        assert all(s["name"] != contract.RUNNER_NAME for s in binding["subjects"])


def test_functions_cannot_read_secrets_cluster_wide():
    for role in of_kind("ClusterRole"):
        if role["metadata"]["name"] == contract.RUNNER_NAME:
            continue  # bound per store namespace only (test above)
        for rule in role["rules"]:
            if "secrets" in rule["resources"] and rule.get("resourceNames") != [
                    contract.ADMIN_PASSWORD_SECRET]:
                assert not {"get", "list", "watch"} & set(rule["verbs"]), role["metadata"]


# ---------------------------------------------------------------- admission, OIDC, network


def test_the_admission_policies_come_before_any_identity_and_each_is_bound():
    files = [path.name for path in FILES]
    policies = of_kind("ValidatingAdmissionPolicy")
    bound = {b["spec"]["policyName"]: b for b in of_kind("ValidatingAdmissionPolicyBinding")}
    assert {p["metadata"]["name"] for p in policies} == set(bound)
    for binding in bound.values():
        assert binding["spec"]["validationActions"] == ["Deny"]
    for policy in policies:
        assert policy["spec"]["failurePolicy"] == "Fail"
    policy_file = next(f for f, d in DOCS if d["kind"] == "ValidatingAdmissionPolicy")
    accounts_file = next(f for f, d in DOCS if d["kind"] == "ServiceAccount")
    assert files.index(policy_file) < files.index(accounts_file)


def test_the_runner_image_reaches_the_job_policy_as_its_parameter():
    params = by_name("ConfigMap")["storeplatform-admission"]
    binding = by_name("ValidatingAdmissionPolicyBinding")["storeplatform-jobs"]
    assert binding["spec"]["paramRef"] == {"name": "storeplatform-admission",
                                           "namespace": contract.PLATFORM_NAMESPACE,
                                           "parameterNotFoundAction": "Deny"}
    for name in ("create-store", "delete-store"):
        env = {e["name"]: e.get("value") for e in container(SERVICES[name])["env"]}
        assert env["RUNNER_IMAGE"] == params["data"]["runnerImage"], name
    assert params["data"]["brokerAudience"] == contract.broker_audience(
        contract.PLATFORM_NAMESPACE)


def test_the_gateway_token_is_required_and_the_sender_tokens_are_projected():
    gateway = container(SERVICES["gateway"])
    env = {e["name"]: e for e in gateway["env"]}
    assert "optional" not in env["GATEWAY_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert "GATEWAY_AUTH" not in env  # closed: the default
    (volume,) = SERVICES["gateway"]["spec"]["template"]["spec"]["volumes"]
    audiences = {s["serviceAccountToken"]["path"]: s["serviceAccountToken"]["audience"]
                 for s in volume["projected"]["sources"]}
    assert audiences == {"broker": contract.broker_audience(contract.PLATFORM_NAMESPACE),
                         "list-stores": contract.service_audience(
                             contract.PLATFORM_NAMESPACE, "list-stores")}
    (mount,) = gateway["volumeMounts"]
    assert env["BROKER_TOKEN_FILE"]["value"] == f"{mount['mountPath']}/broker"
    assert env["LIST_TOKEN_FILE"]["value"] == f"{mount['mountPath']}/list-stores"


@pytest.mark.parametrize("trigger", sorted(REACTED_TO.values()))
def test_every_delivery_names_the_audience_its_receiver_checks(trigger):
    spec = by_name("Trigger")[trigger]["spec"]
    assert spec["subscriber"]["audience"] == contract.service_audience(
        contract.PLATFORM_NAMESPACE, spec["subscriber"]["ref"]["name"])
    assert spec["delivery"]["deadLetterSink"]["audience"] == contract.service_audience(
        contract.PLATFORM_NAMESPACE, "list-stores")
    broker_dls = by_name("Broker")["default"]["spec"]["delivery"]["deadLetterSink"]
    assert broker_dls["audience"] == spec["delivery"]["deadLetterSink"]["audience"]


def test_only_the_gateway_and_the_runners_may_post_to_the_broker():
    policies = of_kind("EventPolicy")
    senders = {f["sub"] for p in policies for f in p["spec"]["from"]}
    assert senders == {"system:serviceaccount:storeplatform:storeplatform-gateway",
                       "system:serviceaccount:storeplatform:storeplatform-runner-store-*"}
    for policy in policies:
        assert [t["ref"]["kind"] for t in policy["spec"]["to"]] == ["Broker"]
        assert policy["spec"]["filters"], policy["metadata"]["name"]


def test_the_platform_namespace_denies_ingress_but_from_knative_serving():
    policies = by_name("NetworkPolicy")
    deny = policies["storeplatform-default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    allow = policies["storeplatform-from-knative-serving"]["spec"]
    (selector,) = allow["podSelector"]["matchExpressions"]
    assert set(selector["values"]) == set(SERVICES)  # never the runner pods


def test_only_list_stores_may_take_the_one_time_password_secret_and_nothing_else():
    rules = [(role["metadata"]["name"], rule) for role in of_kind("ClusterRole")
             for rule in role["rules"] if rule.get("resourceNames") == [
                 contract.ADMIN_PASSWORD_SECRET]]
    assert rules == [("storeplatform-list-stores", {
        "apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "delete"],
        "resourceNames": [contract.ADMIN_PASSWORD_SECRET]})]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_serves_metrics_per_process_and_logs_json(name):
    box = container(SERVICES[name])
    assert gunicorn_option(box["args"], "--config") == "python:storeplatform.gunicorn_conf"
    env = {e["name"]: e.get("value") for e in box["env"]}
    # A tmpfs (the root file system is read-only), not shared with any other container.
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/dev/shm/")
