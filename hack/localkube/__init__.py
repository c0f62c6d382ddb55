"""localkube: a real local Kubernetes control plane for tests and `make dev`.

    from localkube import ClusterOptions, start, stop
    cluster = start(ClusterOptions(state_dir=Path(".state/cluster")))
    cluster.kubeconfig, cluster.api_client(), cluster.stop()

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK run as detached
processes on 127.0.0.1; an agents process runs the Helm runner pods for real (job
executor) and provisions PVs. Binaries come from hack/controlplane/build.sh.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use, so that small helpers of the package (localkube.podnet, which runs
# inside every pod network namespace) do not pay for the Kubernetes client.
_EXPORTS = {"Cluster": "cluster", "StartError": "cluster", "describe": "cluster",
            "is_running": "cluster", "start": "cluster", "stop": "cluster",
            "ClusterOptions": "options", "ExecutorOptions": "options",
            "missing_binaries": "options"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'localkube' has no attribute {name!r}")
    return getattr(importlib.import_module(f"localkube.{_EXPORTS[name]}"), name)
