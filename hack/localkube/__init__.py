"""localkube: a real local Kubernetes control plane for tests and `make dev`.

    from localkube import ClusterOptions, start, stop
    cluster = start(ClusterOptions(state_dir=Path(".state/cluster")))
    cluster.kubeconfig, cluster.api_client(), cluster.stop()

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK run as detached
processes on 127.0.0.1; an agents process runs the Helm runner pods for real (job
executor) and provisions PVs. Binaries come from hack/controlplane/build.sh.
"""

from localkube.cluster import Cluster, StartError, describe, is_running, start, stop
from localkube.options import ClusterOptions, ExecutorOptions, missing_binaries

__all__ = ["Cluster", "ClusterOptions", "ExecutorOptions", "StartError", "describe",
           "is_running", "missing_binaries", "start", "stop"]
