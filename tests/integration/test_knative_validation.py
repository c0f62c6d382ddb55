"""Every manifest in knative/, and every object the functions create, passes server-side
validation (the knative/ ones against the real Knative CRDs).

The CRDs come from the pinned knative.dev/serving and knative.dev/eventing Go modules
(`make knative-crds`, hack/knative-crds/fetch.sh). They are installed into the local API
server for real; the manifests are then applied with `kubectl apply --server-side
--dry-run=server`, so the OpenAPI schemas of the CRDs (and of the built-in kinds) judge
them: wrong types, unknown fields (strict field validation) and missing required fields fail.
The real Knative Eventing runs on the cluster (localknative), so its admission webhooks
(defaulting, validation, SinkBinding injection) judge the Eventing objects too;
tests/unit/test_knative_manifests.py covers the platform's own rules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

import localknative
from localkube.options import DEFAULT_BIN_DIR
from storeplatform import config, contract, create_store, manifests
from tests.conftest import unavailable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KNATIVE = ROOT / "knative"
CRD_DIR = Path(os.environ.get("STOREPLATFORM_KNATIVE_CRDS",
                              Path.home() / ".cache" / "storeplatform" / "knative-crds"))
FIELD_MANAGER = "storeplatform-knative-validation"
MANIFESTS = sorted(KNATIVE.glob("*.yaml"))


def find_kubectl() -> str:
    for candidate in (os.environ.get("KUBECTL"), DEFAULT_BIN_DIR / "kubectl",
                      shutil.which("kubectl")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    unavailable("kubectl not found (make controlplane puts it in ~/.cache/storeplatform/bin)")
    raise AssertionError("unreachable")


class Kubectl:
    """kubectl against the test cluster, with a timeout on every call."""

    def __init__(self, binary: str, kubeconfig: str) -> None:
        self.base = [binary, "--kubeconfig", kubeconfig, "--request-timeout=30s"]

    def __call__(self, *args: str, stdin: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*self.base, *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"kubectl failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def kubectl(cluster) -> Kubectl:
    """kubectl with the Knative CRDs installed, the real Eventing (and its webhooks) running
    and the platform namespace created for real."""
    crds = sorted(CRD_DIR.glob("*.yaml"))
    if not crds:
        unavailable(f"no Knative CRDs in {CRD_DIR}: run `make knative-crds`")
    localknative.start(cluster)
    run = Kubectl(find_kubectl(), cluster.kubeconfig)
    ok(run("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
           "-f", str(CRD_DIR)))
    # (The folder also holds Serving's podspecable-binding ClusterRole: wait for the CRDs.)
    ok(run("wait", "--for=condition=Established", "--timeout=60s", "crd",
           "-l", "knative.dev/crd-install=true"))
    # Namespaced objects can only be dry-run into a namespace that exists.
    ok(run("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
           "-f", str(KNATIVE / "100-namespace.yaml")))
    return run


def dry_run(kubectl: Kubectl, manifest: str) -> subprocess.CompletedProcess:
    # --force-conflicts: other tests may have applied knative/ for real with their own field
    # manager; what is judged here is whether the objects are admitted.
    return kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict",
                   "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", "-",
                   stdin=manifest)


def test_the_crds_of_the_pinned_release_are_installed(kubectl):
    names = ok(kubectl("get", "crd", "-o", "name")).split()
    for crd in ("services.serving.knative.dev", "brokers.eventing.knative.dev",
                "triggers.eventing.knative.dev", "sinkbindings.sources.knative.dev"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd}" in names


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_passes_server_side_dry_run(kubectl, manifest):
    objects = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    out = ok(dry_run(kubectl, manifest.read_text()))
    applied = [line for line in out.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(objects), out


SERVICE = (KNATIVE / "430-gateway.yaml").read_text()
TRIGGERS = (KNATIVE / "500-triggers.yaml").read_text()


@pytest.mark.parametrize(("manifest", "broken", "complaint"), [
    (SERVICE, SERVICE.replace("containerConcurrency: 8", "containerConcurrency: eight"),
     "containerConcurrency"),
    (SERVICE, SERVICE.replace("timeoutSeconds: 30", "timeoutSecond: 30"), "timeoutSecond"),
    (TRIGGERS, TRIGGERS.replace("retry: 5", "retry: five", 1), "retry"),
    (TRIGGERS, TRIGGERS.replace("broker: default", "broker: [default]", 1), "broker"),
])
def test_the_schemas_really_judge(kubectl, manifest, broken, complaint):
    """The same dry-run refuses a wrong type or a misspelt field: the check has teeth.

    (Upstream keeps unknown fields in a Trigger's spec and delivery, so a typo there is not a
    schema error; tests/unit/test_knative_manifests.py insists on each field by name.)
    """
    assert broken != manifest
    result = dry_run(kubectl, broken)
    assert result.returncode != 0
    assert complaint in result.stderr


# ---------------------------------------------------------------- objects the functions create


@pytest.fixture
def store_namespace(kubectl):
    """A store namespace made for real from manifests.namespace(), removed afterwards."""
    name = f"store-dryrun-{uuid.uuid4().hex[:6]}"
    body = manifests.namespace(name, "woocommerce", datetime.now(UTC))
    ok(kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
               stdin=json.dumps(body)))
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def platform_objects(store: str) -> list[dict]:
    settings = config.load(create_store.SETTINGS, {"RUNNER_IMAGE": "storeplatform/helm-runner:dev",
                                                "K_SINK": "http://broker.invalid/x/y"},
                        environ={})
    return [
        manifests.namespace(store, "woocommerce", datetime.now(UTC)),
        manifests.credentials_secret(store, "woocommerce"),
        manifests.runner_role_binding(store, contract.PLATFORM_NAMESPACE),
        manifests.values_secret(store, "woocommerce", "shop.example.org",
                                contract.PLATFORM_NAMESPACE),
        *(manifests.runner_job(action, store, "event-1", settings)
          for action in (contract.ACTION_INSTALL, contract.ACTION_DELETE)),
    ]


def test_objects_the_functions_create_pass_strict_dry_run(kubectl, store_namespace):
    """Strict field validation: a misspelt field would be dropped silently by a plain create.

    The runner Jobs land in `storeplatform`, which warns on Pod Security `restricted`
    violations: the dry-run must not print one.
    """
    objects = platform_objects(store_namespace)
    result = dry_run(kubectl, "\n---\n".join(json.dumps(o) for o in objects))
    out = ok(result)
    assert out.count("(server dry run)") == len(objects), out
    assert "would violate PodSecurity" not in result.stderr, result.stderr
