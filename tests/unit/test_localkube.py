"""localkube's pure parts: how a pod becomes a process, PVs, component command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from localkube import podspec, provisioner
from localkube.components import Layout, Ports, apiserver_argv, kwok_argv
from localkube.executor import token_projection
from localkube.pki import IDENTITIES, extensions, subject

POD = {
    "metadata": {"name": "helm-install-store-a-x1", "namespace": "storeplatform", "uid": "u-1",
                 "labels": {"app.kubernetes.io/component": "helm-runner"}},
    "spec": {"nodeName": "localkube-node-0", "serviceAccountName": "storeplatform-runner",
             "volumes": [{"name": "tmp", "emptyDir": {}},
                         {"name": "values", "secret": {"secretName": "v"}},
                         {"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]},
    "status": {"podIP": "10.244.0.7"},
}
DATA = {("Secret", "creds"): {"password": "s3cret", "user": "admin"},
        ("ConfigMap", "settings"): {"mode": "fast"}}


def lookup(kind: str, name: str):
    return DATA.get((kind, name))


def test_expand_replaces_defined_names_and_unescapes():
    env = {"A": "x", "B": "y"}
    assert podspec.expand("$(A)-$(B)-$(C)-$$(A)", env) == "x-y-$(C)-$(A)"


@pytest.mark.parametrize(("path", "value"), [
    ("metadata.name", "helm-install-store-a-x1"),
    ("metadata.namespace", "storeplatform"),
    ("spec.serviceAccountName", "storeplatform-runner"),
    ("metadata.labels['app.kubernetes.io/component']", "helm-runner"),
    ("metadata.annotations['missing']", ""),
])
def test_field_ref(path, value):
    assert podspec.field_ref(POD, path) == value


def test_resolve_env_follows_kubelet_precedence_and_references():
    container = {
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "GREETING", "value": "$(POD) in $(CFG_mode) mode"},
            {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k",
                                                                "optional": True}}},
        ],
    }
    assert podspec.resolve_env(POD, container, lookup) == {
        "CFG_mode": "fast", "PASSWORD": "s3cret", "POD": "helm-install-store-a-x1",
        "GREETING": "helm-install-store-a-x1 in fast mode"}


@pytest.mark.parametrize(("ref", "error"), [
    ({"name": "nope", "key": "k"}, 'secret "nope" not found'),
    ({"name": "creds", "key": "missing"},
     "couldn't find key missing in Secret storeplatform/creds"),
])
def test_missing_required_secret_is_a_config_error(ref, error):
    container = {"env": [{"name": "X", "valueFrom": {"secretKeyRef": ref}}]}
    with pytest.raises(podspec.ContainerConfigError, match=error):
        podspec.resolve_env(POD, container, lookup)


def test_host_paths_under_a_mount_are_kept(tmp_path):
    chart = tmp_path / "checkout" / "store-chart"
    chart.mkdir(parents=True)
    mounts = {str(tmp_path): "/pods/p1/volumes/tmp"}
    assert podspec.rewrite_paths(str(chart), mounts) == str(chart)
    assert podspec.rewrite_paths(str(tmp_path), mounts) == "/pods/p1/volumes/tmp"
    assert podspec.rewrite_paths(str(tmp_path / "helm-cache"), mounts) == (
        "/pods/p1/volumes/tmp/helm-cache")


def test_mounts_map_supported_volumes_and_rewrite_paths():
    container = {"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                                  {"name": "values", "mountPath": "/etc/values/"},
                                  {"name": "data", "mountPath": "/data"}]}
    mounts = podspec.mount_map(POD, container, lambda name: f"/state/pod/volumes/{name}")
    assert mounts == {"/tmp": "/state/pod/volumes/tmp", "/etc/values": "/state/pod/volumes/values"}
    assert podspec.rewrite_paths("/etc/values/values.yaml", mounts) == (
        "/state/pod/volumes/values/values.yaml")
    assert podspec.rewrite_paths("/etc/valuesx", mounts) == "/etc/valuesx"


def test_command_line_expands_and_needs_a_command():
    container = {"command": ["python", "-m", "storeplatform.runner"], "args": ["$(ACTION)"]}
    assert podspec.command_line(container, {"ACTION": "install"}, {}) == [
        "python", "-m", "storeplatform.runner", "install"]
    with pytest.raises(podspec.ContainerConfigError, match="no command"):
        podspec.command_line({"args": ["x"]}, {}, {})


def test_process_env_keeps_the_pods_own_kubeconfig():
    env = podspec.process_env({"KUBECONFIG": "/admin", "HOME": "/tmp"}, {"/tmp": "/p/tmp"},
                              path_prepend=["/bin-cache", "/venv/bin"], pythonpath=["/repo/fn"],
                              hostname="pod", home="/p", kubeconfig="/p/kubeconfig")
    assert env["KUBECONFIG"] == "/p/kubeconfig"
    assert env["HOME"] == "/p/tmp"
    assert env["TMPDIR"] == "/p/tmp"
    assert env["PATH"].startswith("/bin-cache:/venv/bin:")
    assert env["PYTHONPATH"] == "/repo/fn"


def test_termination_message_follows_the_policy_and_kubelet_limits():
    fallback = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    output = b"".join(f"line {i}\n".encode() for i in range(200)) + b"reason: it broke\n"
    message = podspec.termination_message(fallback, 1, output)
    assert message.endswith("reason: it broke\n")
    assert len(message.encode()) <= podspec.MESSAGE_LOG_BYTES
    assert len(message.splitlines()) <= podspec.MESSAGE_LOG_LINES
    assert podspec.termination_message(fallback, 0, output) == ""
    assert podspec.termination_message({}, 1, output) == ""


def test_terminated_status_phase_and_reason():
    container = {"name": "helm", "image": "runner"}
    failed = podspec.terminated_status(container, 3, "boom", "t0", "t1")
    assert failed["phase"] == "Failed"
    assert failed["containerStatuses"][0]["state"]["terminated"] == {
        "exitCode": 3, "reason": "Error", "message": "boom", "startedAt": "t0", "finishedAt": "t1"}
    assert podspec.terminated_status(container, 0, "", "t0", "t1")["phase"] == "Succeeded"
    restarted = podspec.running_status(container, "t2", "10.0.0.1", restarts=2)
    assert restarted["containerStatuses"][0]["restartCount"] == 2
    assert podspec.exit_code_of(-9) == 137


def test_token_projection_only_when_automounted():
    projected = {"name": "kube-api-access-x", "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}
    assert token_projection({"spec": {"volumes": [projected]}}) == {
        "expirationSeconds": 3607, "path": "token"}
    assert token_projection({"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}) is None


def test_a_token_for_another_audience_is_a_volume_not_the_api_credential():
    """The runner's Broker token: written into its volume; the kubeconfig keeps the API one."""
    broker = {"name": "broker-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "eventing.knative.dev/broker/storeplatform/default", "path": "token"}}]}}
    api = {"name": "kube-api-access-x", "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}
    pod = {"spec": {"volumes": [broker, api]}}
    assert token_projection(pod) == {"expirationSeconds": 3607, "path": "token"}
    assert token_projection({"spec": {"volumes": [broker]}}) is None
    container = {"volumeMounts": [{"name": "broker-token",
                                   "mountPath": "/var/run/storeplatform/broker"}]}
    assert podspec.mount_map(pod, container, lambda name: f"/state/{name}") == {
        "/var/run/storeplatform/broker": "/state/broker-token"}


CLAIM = {"metadata": {"name": "data", "namespace": "store-a", "uid": "c-1"},
         "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "2Gi"}}},
         "status": {"phase": "Pending"}}
CLASSES = {"standard": {"metadata": {"name": "standard"}, "reclaimPolicy": "Delete"}}


def test_provisioner_makes_a_prebound_volume_of_the_requested_size():
    assert provisioner.wants_volume(CLAIM, CLASSES)
    assert not provisioner.wants_volume(CLAIM | {"status": {"phase": "Bound"}}, CLASSES)
    assert not provisioner.wants_volume(CLAIM, {})
    volume = provisioner.persistent_volume(CLAIM, CLASSES["standard"], "/state/volumes/pvc-c-1")
    assert volume["metadata"]["name"] == "pvc-c-1"
    assert volume["spec"]["capacity"] == {"storage": "2Gi"}
    assert volume["spec"]["claimRef"]["uid"] == "c-1"
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert provisioner.reclaimable(volume | {"status": {"phase": "Released"}})
    assert not provisioner.reclaimable(volume | {"status": {"phase": "Bound"}})


def test_component_command_lines_stay_on_loopback_with_the_required_plugins():
    layout = Layout(Path("/state"))
    argv = apiserver_argv(Path("/bin"), layout, Ports(1, 2, 3, 4, 5))
    assert "--bind-address=127.0.0.1" in argv
    assert "--authorization-mode=Node,RBAC" in argv
    plugins = next(a for a in argv if a.startswith("--enable-admission-plugins=")).split("=")[1]
    for plugin in ("NamespaceLifecycle", "LimitRanger", "ServiceAccount", "ResourceQuota",
                   "PodSecurity"):
        assert plugin in plugins.split(",")
    assert "--manage-all-nodes=false" in kwok_argv(Path("/bin"), layout)


def test_certificates_carry_kubernetes_identities():
    admin = next(i for i in IDENTITIES if i.name == "admin")
    assert subject(admin) == "/O=system:masters/CN=localkube-admin"
    apiserver = next(i for i in IDENTITIES if i.name == "apiserver")
    assert "subjectAltName=IP:127.0.0.1,DNS:localhost" in extensions(apiserver)
    assert "extendedKeyUsage=serverAuth\n" in extensions(apiserver)


def test_the_api_server_names_an_in_cluster_key_url_and_only_its_own_audience(tmp_path):
    """OIDC discovery must never point pods at a host interface address; tokens minted for
    the Broker or a function must never authenticate to the API server."""
    argv = apiserver_argv(tmp_path, Layout(tmp_path), Ports(1, 2, 3, 4, 5))
    assert ("--service-account-jwks-uri="
            "https://kubernetes.default.svc.cluster.local/openid/v1/jwks") in argv
    assert "--api-audiences=https://kubernetes.default.svc.cluster.local" in argv
