"""Least privilege as the real API server enforces it: every platform ServiceAccount against
every action it must be refused and every action the code needs, by impersonation and
server-side dry run (RBAC and admission, the ValidatingAdmissionPolicies of
knative/150-admission-policies.yaml included; nothing is persisted).

The matrix is printed (pytest -s) and written to artifacts/security/permission-matrix.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack import bootstrap
from storeplatform import contract, intent, manifests
from storeplatform.lifecycle import provision

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NS = "storeplatform"
A, B = "store-perm-a", "store-perm-b"  # two stores: A has its runner set up, B does not
RUNNER_IMAGE = "storeplatform/helm-runner:dev"
IDENTITIES = {
    "gateway": "storeplatform-gateway",
    "create-store": "storeplatform-create-store",
    "delete-store": "storeplatform-delete-store",
    "list-stores": "storeplatform-list-stores",
    f"runner of {A}": contract.runner_account(A),
}
ALL = frozenset(IDENTITIES)


@dataclass(frozen=True)
class Action:
    what: str
    method: str
    path: str
    body: Any = None
    allowed: frozenset[str] = field(default_factory=frozenset)
    patch: bool = False


def settings() -> dict[str, Any]:
    from storeplatform import config
    return config.load(provision.SETTINGS, {"RUNNER_IMAGE": RUNNER_IMAGE,
                                            "K_SINK": "http://broker.example/"}, environ={})


def job(action: str, store: str, **pod: Any) -> dict[str, Any]:
    made = manifests.runner_job(action, store, "e-1", settings())
    made["spec"]["template"]["spec"] |= pod
    return made


def job_with_container(store: str, **container: Any) -> dict[str, Any]:
    made = job("install", store)
    made["spec"]["template"]["spec"]["containers"][0] |= container
    return made


def role_binding(namespace: str, subject: str, role: str = contract.RUNNER_NAME,
                 name: str = contract.RUNNER_NAME) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": NS}]}


def secret(namespace: str, name: str, kind: str = "Opaque",
           annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": kind,
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": annotations or {}},
            "stringData": {"k": "v"}}


def store_namespace(name: str) -> dict[str, Any]:
    return manifests.namespace(name, "woocommerce", datetime.now(UTC))


def runner_account(store: str, uid: str) -> dict[str, Any]:
    return manifests.runner_service_account(store, NS, {"metadata": {"name": store,
                                                                     "uid": uid}})


CS, DS, LS = "create-store", "delete-store", "list-stores"
RA = f"runner of {A}"


def actions(uids: dict[str, str]) -> list[Action]:
    """Every action: the refused ones (the audit's findings and their neighbours), then what
    the code does (allowed exactly for the identity whose code does it)."""
    core, rbac, batch = "/api/v1", "/apis/rbac.authorization.k8s.io/v1", "/apis/batch/v1"
    no_psa = store_namespace("store-perm-new")
    for key in contract.POD_SECURITY_LABELS:
        del no_psa["metadata"]["labels"][key]
    return [
        # ---- refused for every platform identity
        Action("RoleBinding in kube-system binding the runner role to itself", "POST",
               f"{rbac}/namespaces/kube-system/rolebindings",
               role_binding("kube-system", "storeplatform-create-store")),
        Action(f"RoleBinding in {A} binding the runner role to create-store", "POST",
               f"{rbac}/namespaces/{A}/rolebindings",
               role_binding(A, "storeplatform-create-store", name="x")),
        Action(f"RoleBinding in {A} for the runner of {B}", "POST",
               f"{rbac}/namespaces/{A}/rolebindings",
               role_binding(A, contract.runner_account(B), name="x")),
        Action(f"RoleBinding in {A} to ClusterRole admin", "POST",
               f"{rbac}/namespaces/{A}/rolebindings",
               role_binding(A, contract.runner_account(A), role="admin", name="x")),
        Action("ClusterRoleBinding to cluster-admin", "POST",
               f"{rbac}/clusterrolebindings",
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "storeplatform-escalate"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "storeplatform-create-store",
                              "namespace": NS}]}),
        Action("Job in storeplatform running another image as the runner", "POST",
               f"{batch}/namespaces/{NS}/jobs", job_with_container(A, image="busybox:1")),
        Action("Job with the runner image and a shell command", "POST",
               f"{batch}/namespaces/{NS}/jobs",
               job_with_container(A, command=["sh", "-c", "cat /var/run/secrets/*"])),
        Action("Job running as create-store's account", "POST",
               f"{batch}/namespaces/{NS}/jobs",
               job("install", A, serviceAccountName="storeplatform-create-store")),
        Action(f"Job for {A} running as the runner of {B}", "POST",
               f"{batch}/namespaces/{NS}/jobs",
               job("install", A, serviceAccountName=contract.runner_account(B))),
        Action("Job mounting a hostPath", "POST", f"{batch}/namespaces/{NS}/jobs",
               job("install", A, volumes=[*job("install", A)["spec"]["template"]["spec"][
                   "volumes"], {"name": "host", "hostPath": {"path": "/"}}])),
        Action("runner Job in another namespace (default)", "POST",
               f"{batch}/namespaces/default/jobs",
               job("install", A) | {"metadata": {**job("install", A)["metadata"],
                                                  "namespace": "default"}}),
        Action("Pod in storeplatform", "POST", f"{core}/namespaces/{NS}/pods",
               {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                "spec": {"containers": [{"name": "x", "image": "busybox:1"}]}}),
        Action("Secret in kube-system", "POST", f"{core}/namespaces/kube-system/secrets",
               secret("kube-system", "x")),
        Action("Secret in default", "POST", f"{core}/namespaces/default/secrets",
               secret("default", "x")),
        Action("ServiceAccount token Secret for delete-store in storeplatform", "POST",
               f"{core}/namespaces/{NS}/secrets",
               secret(NS, "helm-install-store-perm-a", "kubernetes.io/service-account-token",
                      {"kubernetes.io/service-account.name": "storeplatform-delete-store"})),
        Action(f"read store-credentials of {B}", "GET",
               f"{core}/namespaces/{B}/secrets/store-credentials"),
        Action(f"list Secrets in {B}", "GET", f"{core}/namespaces/{B}/secrets"),
        Action("list Secrets in storeplatform", "GET", f"{core}/namespaces/{NS}/secrets"),
        Action("relabel kube-system (Pod Security privileged)", "PATCH",
               f"{core}/namespaces/kube-system",
               {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
               patch=True),
        Action(f"lift Pod Security of {A}", "PATCH", f"{core}/namespaces/{A}",
               {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
               patch=True),
        Action(f"change the store label of {A}", "PATCH", f"{core}/namespaces/{A}",
               {"metadata": {"labels": {"storeplatform.io/store": B}}}, patch=True),
        Action(f"annotate {A} outside storeplatform.io/", "PATCH", f"{core}/namespaces/{A}",
               {"metadata": {"annotations": {"scheduler.alpha.kubernetes.io/node-selector":
                                             "x=y"}}}, patch=True),
        Action("namespace not named store-*", "POST", f"{core}/namespaces",
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "evil"}}),
        Action("store namespace without Pod Security", "POST", f"{core}/namespaces", no_psa),
        Action("ServiceAccount storeplatform-evil in storeplatform", "POST",
               f"{core}/namespaces/{NS}/serviceaccounts",
               {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "storeplatform-evil"}}),
        Action(f"runner account for {B} owned by nothing", "POST",
               f"{core}/namespaces/{NS}/serviceaccounts",
               {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": contract.runner_account(B)}}),
        Action("delete a Job that is no runner's", "DELETE",
               f"{batch}/namespaces/{NS}/jobs/not-a-runner"),
        Action("change the admission policy parameters", "PATCH",
               f"{core}/namespaces/{NS}/configmaps/storeplatform-admission",
               {"data": {"runnerImage": "busybox:1"}}, patch=True),
        Action("delete namespace kube-system", "DELETE", f"{core}/namespaces/kube-system"),
        Action(f"delete namespace {B}", "DELETE", f"{core}/namespaces/{B}"),
        # ---- what the code does: allowed for exactly the identity that does it
        Action("create a store namespace with every mark", "POST", f"{core}/namespaces",
               store_namespace("store-perm-new"), frozenset({CS})),
        Action("list namespaces (store cap, list)", "GET", f"{core}/namespaces",
               allowed=frozenset({CS, LS})),
        Action(f"create store-credentials in {A}", "POST", f"{core}/namespaces/{A}/secrets",
               secret(A, contract.CREDENTIALS_SECRET), frozenset({CS, RA})),  # its own store
        Action(f"create the values Secret helm-install-{A}", "POST",
               f"{core}/namespaces/{NS}/secrets",
               manifests.values_secret(A, "woocommerce", None, NS), frozenset({CS})),
        Action(f"bind the runner role to the runner of {A} in {A}", "POST",
               f"{rbac}/namespaces/{A}/rolebindings",
               role_binding(A, contract.runner_account(A), name="storeplatform-runner-2"),
               frozenset()),  # only the name storeplatform-runner (next line) is allowed
        Action(f"create RoleBinding storeplatform-runner in {B} for its runner", "POST",
               f"{rbac}/namespaces/{B}/rolebindings",
               manifests.runner_role_binding(B, NS), frozenset({CS, DS})),
        Action(f"create the runner account of {B}, owned by {B}", "POST",
               f"{core}/namespaces/{NS}/serviceaccounts", runner_account(B, uids[B]),
               frozenset({CS, DS})),
        Action(f"start helm-install-{A}", "POST", f"{batch}/namespaces/{NS}/jobs",
               job("install", A), frozenset({CS})),
        Action(f"start helm-delete-{A}", "POST", f"{batch}/namespaces/{NS}/jobs",
               job("delete", A), frozenset({DS})),
        Action(f"delete runner Job helm-install-{B}", "DELETE",
               f"{batch}/namespaces/{NS}/jobs/helm-install-{B}", allowed=frozenset({CS, DS})),
        Action("write the store cap's ConfigMap", "POST", f"{core}/namespaces/{NS}/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": contract.STORES_CONFIG_MAP}, "data": {A: "1"}},
               frozenset({CS})),
        Action(f"write the intent record of {B}", "POST", f"{core}/namespaces/{NS}/configmaps",
               intent_record(B), frozenset({CS, DS})),
        Action(f"an intent record named for {B}, labelled as {A}'s", "POST",
               f"{core}/namespaces/{NS}/configmaps", intent_record(B, labelled=A)),
        Action("replace the admission policy parameters (update: the intent records' verb)",
               "PUT", f"{core}/namespaces/{NS}/configmaps/storeplatform-admission",
               {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "storeplatform-admission", "namespace": NS},
                "data": {"runnerImage": "busybox:1"}}),
        Action("a ConfigMap in storeplatform named like no intent record", "POST",
               f"{core}/namespaces/{NS}/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "evil"}}),
        Action(f"delete the intent record of {A} (the sweep)", "DELETE",
               f"{core}/namespaces/{NS}/configmaps/intent-{A}", allowed=frozenset({DS})),
        Action(f"mark {A} deleting (storeplatform.io/ annotation)", "PATCH",
               f"{core}/namespaces/{A}",
               {"metadata": {"annotations": {contract.ANNOTATION_PHASE: "deleting"}}},
               frozenset({DS, RA}), patch=True),
        Action(f"delete namespace {A} (its runner, after helm uninstall)", "DELETE",
               f"{core}/namespaces/{A}", allowed=frozenset({RA})),
        Action(f"helm's release Secret in {A}", "POST", f"{core}/namespaces/{A}/secrets",
               secret(A, "sh.helm.release.v1.store-perm-a.v1"), frozenset({RA})),
        Action(f"a chart Deployment in {A}", "POST", f"/apis/apps/v1/namespaces/{A}/deployments",
               {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "x", "image": "busybox:1"}]}}}},
               frozenset({RA})),
        Action("list runner Jobs and Pods (list-stores)", "GET", f"{batch}/namespaces/{NS}/jobs",
               allowed=frozenset({LS})),
        Action("record a dead letter Event", "POST", f"{core}/namespaces/{NS}/events",
               {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "dl-"},
                "involvedObject": {"kind": "Broker", "name": "default", "namespace": NS},
                "reason": contract.DEAD_LETTER_REASON, "message": "{}", "type": "Warning"},
               frozenset({LS})),
    ]


# Where RBAC grants the verb (the audit's escalation paths), the policy that must refuse.
POLICY_REFUSALS: dict[tuple[str, str], str] = {
    ("RoleBinding in kube-system binding the runner role to itself", CS):
        "storeplatform-rolebindings",
    ("RoleBinding in kube-system binding the runner role to itself", DS):
        "storeplatform-rolebindings",
    ("Job in storeplatform running another image as the runner", CS): "storeplatform-jobs",
    ("Job in storeplatform running another image as the runner", DS): "storeplatform-jobs",
    ("Secret in kube-system", CS): "storeplatform-secrets",
    ("Secret in default", CS): "storeplatform-secrets",
    ("ServiceAccount token Secret for delete-store in storeplatform", CS):
        "storeplatform-secrets",
    ("relabel kube-system (Pod Security privileged)", DS): "storeplatform-namespaces",
    (f"lift Pod Security of {A}", RA): "storeplatform-namespaces",
    (f"lift Pod Security of {A}", DS): "storeplatform-namespaces",
    (f"start helm-delete-{A}", CS): "storeplatform-jobs",
    ("store namespace without Pod Security", CS): "storeplatform-namespaces",
    ("ServiceAccount storeplatform-evil in storeplatform", CS): "storeplatform-runner-accounts",
    ("delete a Job that is no runner's", DS): "storeplatform-job-deletions",
    # The intent records need ConfigMap writes of any name (names are per store).
    (f"an intent record named for {B}, labelled as {A}'s", CS): "storeplatform-stores-config",
    (f"an intent record named for {B}, labelled as {A}'s", DS): "storeplatform-stores-config",
    ("a ConfigMap in storeplatform named like no intent record", DS):
        "storeplatform-stores-config",
    ("write the store cap's ConfigMap", DS): "storeplatform-stores-config",
    ("replace the admission policy parameters (update: the intent records' verb)", CS):
        "storeplatform-stores-config",
    ("replace the admission policy parameters (update: the intent records' verb)", DS):
        "storeplatform-stores-config",
    (f"delete the intent record of {A} (the sweep)", CS): "RBAC",
}


def intent_record(store: str, labelled: str | None = None) -> dict:
    """An intent record as the functions write it (docs/contract.md "Ordering")."""
    wanted = intent.Intent(intent.DELETE, datetime.now(UTC), "e-1", "/tests")
    record = intent.record_object(labelled or store, wanted, NS, datetime.now(UTC),
                                  lease_until=None, expires=True)
    record["metadata"]["name"] = intent.record_name(store)
    return record


@dataclass
class Result:
    allowed: bool
    by: str  # "" when allowed; "RBAC", or the admission policy that refused


def attempt(api: client.ApiClient, action: Action) -> Result:
    query = [("dryRun", "All")] if action.method in ("POST", "PUT", "PATCH", "DELETE") else []
    headers = {"Content-Type": "application/merge-patch+json" if action.patch
               else "application/json", "Accept": "application/json"}
    try:
        api.call_api(action.path, action.method, query_params=query, header_params=headers,
                     body=action.body, auth_settings=["BearerToken"], _preload_content=False,
                     _request_timeout=20)
        return Result(True, "")
    except ApiException as err:
        if err.status == 409 and action.method == "POST":
            # AlreadyExists comes from storage, after authorization and admission passed:
            # the session's other tests may have made the object for real.
            return Result(True, "")
        if err.status != 403:
            raise AssertionError(f"{action.what}: HTTP {err.status} {err.body}") from err
        message = json.loads(err.body or "{}").get("message", "")
        if "ValidatingAdmissionPolicy" in message:
            return Result(False, message.split("'")[1])
        return Result(False, "RBAC")


def impersonating(cluster, account: str) -> client.ApiClient:
    api = cluster.api_client()
    api.set_default_header("Impersonate-User", f"system:serviceaccount:{NS}:{account}")
    return api


@pytest.fixture(scope="module")
def stores(cluster):
    """The platform objects of knative/ (RBAC and admission policies), two store namespaces
    made as create-store would, A's runner account and binding and intent record, a runner
    Job of B."""
    admin = cluster.api_client()
    bootstrap.apply(admin, bootstrap.platform_objects())
    core, batch = client.CoreV1Api(admin), client.BatchV1Api(admin)
    uids = {}
    for name in (A, B):
        try:
            uids[name] = core.create_namespace(store_namespace(name)).metadata.uid
        except ApiException as err:
            assert err.status == 409
            uids[name] = core.read_namespace(name).metadata.uid
    made = [(core.create_namespaced_service_account, NS, runner_account(A, uids[A])),
            (client.RbacAuthorizationV1Api(admin).create_namespaced_role_binding, A,
             manifests.runner_role_binding(A, NS)),
            (core.create_namespaced_secret, B, secret(B, contract.CREDENTIALS_SECRET)),
            (core.create_namespaced_config_map, NS, intent_record(A)),  # for the sweep's row
            (batch.create_namespaced_job, NS, job("install", B) | {"spec": {
                **job("install", B)["spec"], "suspend": True}}),
            (batch.create_namespaced_job, NS, {
                "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "not-a-runner"},
                "spec": {"suspend": True, "template": {"spec": {
                    "restartPolicy": "Never", "containers": [{"name": "x", "image": "x"}]}}}})]
    for create, namespace, body in made:
        try:
            create(namespace, body)
        except ApiException as err:
            assert err.status == 409, err.body
    wait_for_policies(cluster, uids)
    return uids


def wait_for_policies(cluster, uids, timeout: float = 60.0) -> None:
    """The API server enforces a new policy (and reads its parameters) a moment after it is
    created: wait until a policy refuses and a parameterised one admits."""
    probes = {a.what: a for a in actions(uids)}
    clients = {who: impersonating(cluster, IDENTITIES[who]) for who in (CS, DS, RA)}
    deadline = time.monotonic() + timeout
    while True:
        pending = [key for key, policy in POLICY_REFUSALS.items()
                   if attempt(clients[key[1]], probes[key[0]]).by != policy]
        if not pending and attempt(clients[CS], probes[f"start helm-install-{A}"]).allowed:
            return
        assert time.monotonic() < deadline, f"policies never took effect: {pending}"
        time.sleep(0.5)


def measure(cluster, uids) -> dict[str, dict[str, Result]]:
    clients = {who: impersonating(cluster, account) for who, account in IDENTITIES.items()}
    return {action.what: {who: attempt(api, action) for who, api in clients.items()}
            for action in actions(uids)}


def table(matrix: dict[str, dict[str, Result]], allowed: dict[str, frozenset[str]]) -> str:
    header = "| action | " + " | ".join(IDENTITIES) + " |"
    lines = [header, "|" + " --- |" * (len(IDENTITIES) + 1)]
    for what, row in matrix.items():
        cells = []
        for who in IDENTITIES:
            result = row[who]
            mark = "allowed" if result.allowed else f"refused ({result.by})"
            if result.allowed != (who in allowed[what]):
                mark = f"**{mark}: WRONG**"
            cells.append(mark)
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_every_platform_identity_may_do_its_job_and_nothing_more(cluster, stores):
    matrix = measure(cluster, stores)
    expected = {a.what: a.allowed for a in actions(stores)}
    report = table(matrix, expected)
    out = ROOT / "artifacts" / "security"
    out.mkdir(parents=True, exist_ok=True)
    (out / "permission-matrix.md").write_text(report + "\n")
    print("\n" + report)
    wrong = [(what, who) for what, row in matrix.items() for who, result in row.items()
             if result.allowed != (who in expected[what])]
    assert not wrong, f"unexpected permissions: {wrong}"


def test_the_findings_are_refused_by_the_policies_not_only_by_rbac(cluster, stores):
    """Where RBAC grants the verb (the audit's escalation paths), an admission policy is
    what refuses; a policy that stopped matching would show up here."""
    matrix = measure(cluster, stores)
    got = {key: matrix[key[0]][key[1]].by for key in POLICY_REFUSALS}
    assert got == POLICY_REFUSALS


def test_a_runner_never_reaches_another_store(cluster, stores):
    """Finding 3: one runner identity served every store. Now B's Secrets are out of A's
    runner's reach, through its real token too (not only by impersonation)."""
    admin = cluster.api_client()
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(
        contract.runner_account(A), NS, {"spec": {"expirationSeconds": 600}}).status.token
    with cluster.token_client(token) as api:
        core = client.CoreV1Api(api)
        core.list_namespaced_secret(A, _request_timeout=10)  # its own store: fine
        for call in (lambda: core.list_namespaced_secret(B, _request_timeout=10),
                     lambda: core.read_namespaced_secret(contract.CREDENTIALS_SECRET, B,
                                                         _request_timeout=10),
                     lambda: core.list_namespaced_secret(NS, _request_timeout=10)):
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403



def test_only_the_platform_writes_its_marks_on_namespaces(cluster, stores):
    """Any other identity that may create and label namespaces (here a CI robot with exactly
    those rights) can neither squat a store name nor relabel a store namespace."""
    admin = cluster.api_client()
    rbac = client.RbacAuthorizationV1Api(admin)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "test-namespace-robot"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"],
                       "verbs": ["create", "patch", "get"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "test-namespace-robot"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "test-namespace-robot"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "ci-robot"}]}
    for create, body in ((rbac.create_cluster_role, role),
                         (rbac.create_cluster_role_binding, binding)):
        try:
            create(body)
        except ApiException as err:
            assert err.status == 409
    robot = cluster.api_client()
    robot.set_default_header("Impersonate-User", "ci-robot")
    squat = Action("squat", "POST", "/api/v1/namespaces", store_namespace("store-squatted"))
    plain = Action("plain", "POST", "/api/v1/namespaces",
                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ci-plain"}})
    relabel = Action("relabel", "PATCH", f"/api/v1/namespaces/{A}", {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}}, patch=True)
    other_label = Action("other", "PATCH", f"/api/v1/namespaces/{A}", {"metadata": {"labels": {
        "team": "shop"}}}, patch=True)
    deadline = time.monotonic() + 60
    while attempt(robot, squat).allowed and time.monotonic() < deadline:
        time.sleep(0.5)  # the new binding and policy take a moment
    assert attempt(robot, squat).by == "storeplatform-namespace-marks"
    assert attempt(robot, relabel).by == "storeplatform-namespace-marks"
    assert attempt(robot, plain).allowed
    assert attempt(robot, other_label).allowed  # what is not a platform mark stays theirs
