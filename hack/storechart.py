"""Run Helm and checkov on store-chart/: shared by the chart tests and `make chart-check`.

Helm is the pinned binary in ~/.cache/storeplatform/bin (hack/controlplane/build.sh puts
it there) or, failing that, one on PATH. checkov lives in its own virtualenv
(~/.cache/storeplatform/checkov-venv, see hack/checkov/requirements.txt) because its
pins conflict with the project's test tools.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = REPO_ROOT / "store-chart"
PLATFORM_VALUES = CHART_DIR / "ci" / "platform-values.yaml"
PROFILES = ("local", "production")
CACHE_DIR = Path.home() / ".cache" / "storeplatform"
CHECKOV_CONFIG = CHART_DIR / ".checkov.yaml"
HELM_TIMEOUT_SECONDS = 120
CHECKOV_TIMEOUT_SECONDS = 600


def find_helm() -> Path | None:
    """The pinned helm binary, else a helm on PATH, else None."""
    pinned = CACHE_DIR / "bin" / "helm"
    if pinned.is_file():
        return pinned
    found = shutil.which("helm")
    return Path(found) if found else None


def find_checkov() -> Path | None:
    """checkov from its own virtualenv, else one on PATH, else None."""
    pinned = CACHE_DIR / "checkov-venv" / "bin" / "checkov"
    if pinned.is_file():
        return pinned
    found = shutil.which("checkov")
    return Path(found) if found else None


def profile_values(profile: str) -> Path:
    """values.<profile>.yaml of the chart."""
    return CHART_DIR / f"values.{profile}.yaml"


def values_args(profile: str, extra_files: Sequence[Path] = (),
                set_values: Sequence[str] = ()) -> list[str]:
    """--values arguments in the runner's order (profile, then the platform's values)."""
    args = ["--values", str(profile_values(profile)), "--values", str(PLATFORM_VALUES)]
    for path in extra_files:
        args += ["--values", str(path)]
    for item in set_values:
        args += ["--set", item]
    return args


def run_helm(helm: Path, args: Sequence[str], kubeconfig: str | None = None,
             timeout: int = HELM_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    """helm with a list of arguments (never a shell string); output captured."""
    command = [str(helm), *args]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    log.info("helm %s", " ".join(args[:2]))
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)


def render(helm: Path, profile: str, namespace: str = "store-ci",
           extra_files: Sequence[Path] = (), set_values: Sequence[str] = (),
           ) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart as the platform would install it."""
    args = ["template", namespace, str(CHART_DIR), "--namespace", namespace,
            *values_args(profile, extra_files, set_values)]
    return run_helm(helm, args)


def documents(manifest: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest, empty documents dropped."""
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def lint(helm: Path, profile: str, namespace: str = "store-ci",
         ) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` with the profile and the platform's values."""
    return run_helm(helm, ["lint", "--strict", str(CHART_DIR), "--namespace", namespace,
                           *values_args(profile)])


def acme_solver_pod(namespace: str, name: str = "cm-acme-http-solver-test") -> dict[str, Any]:
    """cert-manager's HTTP-01 solver pod as its controller builds it with default flags
    (cert-manager v1.21: pkg/issuer/acme/http/pod.go buildDefaultPod, labels from
    pkg/apis/acme/v1/types.go, resources and runAsNonRoot from the controller defaults):
    what a store namespace must admit, and what its NetworkPolicy must select."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {
            "acme.cert-manager.io/http-domain": "1234567890",
            "acme.cert-manager.io/http-token": "987654321",
            "acme.cert-manager.io/http01-solver": "true"}},
        "spec": {
            "automountServiceAccountToken": False, "enableServiceLinks": False,
            "restartPolicy": "OnFailure", "nodeSelector": {"kubernetes.io/os": "linux"},
            "securityContext": {"runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "acmesolver", "image": "cert-manager-acmesolver:v1.21.1",
                "imagePullPolicy": "IfNotPresent",
                "args": ["--listen-port=8089", "--domain=store.example.com", "--token=t",
                         "--key=k"],
                "ports": [{"name": "http", "containerPort": 8089}],
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}},
                "securityContext": {"readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}}}]},
    }


def checkov(checkov_bin: Path, rendered_dir: Path) -> dict[str, Any]:
    """checkov over a directory of rendered manifests, with the chart's config and skips;
    returns the JSON report's summary plus the failed check ids."""
    result = subprocess.run(
        [str(checkov_bin), "--config-file", str(CHECKOV_CONFIG), "--directory", str(rendered_dir),
         "--output", "json"],
        capture_output=True, text=True, check=False, timeout=CHECKOV_TIMEOUT_SECONDS)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(
            f"checkov did not run (exit {result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = {"passed": 0, "failed": 0, "skipped": 0, "failed_checks": []}
    for part in reports:
        for key in ("passed", "failed", "skipped"):
            summary[key] += int(part.get("summary", {}).get(key, 0))
        for check in part.get("results", {}).get("failed_checks", []):
            summary["failed_checks"].append(
                f"{check['check_id']} {check.get('resource', '')}: {check.get('check_name', '')}")
    return summary
