"""Settings of one local cluster, fixed when it starts (stored in <state-dir>/cluster.json)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN_DIR = Path.home() / ".cache" / "storeplatform" / "bin"
REQUIRED_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BUILD_COMMAND = "make controlplane"

# The label that hands a pod to the job executor instead of KWOK (contract: Helm runner pods).
RUNNER_LABEL_KEY = "app.kubernetes.io/component"
RUNNER_LABEL_VALUE = "helm-runner"
# Nodes KWOK manages carry this annotation.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_ANNOTATION_VALUE = "fake"


@dataclass(frozen=True)
class ExecutorOptions:
    """How the job executor runs a runner pod's container as a local process."""

    # Prepended to PATH; empty means the cluster's bin dir (helm, kubectl) and the bin dir of
    # the interpreter running localkube (so `python` is the venv's).
    path_prepend: tuple[str, ...] = ()
    # PYTHONPATH of the process: the repository's functions (the runner image's code).
    pythonpath: tuple[str, ...] = (str(REPO_ROOT / "functions"),)
    # Working directory of the process (relative chart paths resolve from here).
    workdir: str = str(REPO_ROOT)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutorOptions:
        return cls(path_prepend=tuple(data["path_prepend"]), pythonpath=tuple(data["pythonpath"]),
                   workdir=data["workdir"])


@dataclass(frozen=True)
class ClusterOptions:
    """What `start` needs; everything else (ports, certificates) it derives."""

    state_dir: Path
    bin_dir: Path = DEFAULT_BIN_DIR
    # Fake nodes KWOK keeps Ready (large allocatable, no taint).
    nodes: int = 1
    # 0 picks a free port; a fixed port keeps the kubeconfig stable across restarts.
    apiserver_port: int = 0
    ready_timeout: float = 180.0
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["bin_dir"] = str(self.bin_dir)
        return data


def resolved_executor(options: ClusterOptions) -> ExecutorOptions:
    """The executor options with the PATH default filled in."""
    if options.executor.path_prepend:
        return options.executor
    interpreter_bin = str(Path(sys.executable).parent)
    return replace(options.executor, path_prepend=(str(options.bin_dir), interpreter_bin))


def missing_binaries(bin_dir: Path) -> list[str]:
    """Names of the control-plane binaries not (yet) built into bin_dir."""
    return [name for name in REQUIRED_BINARIES if not (bin_dir / name).is_file()]
