# Local Kubernetes control plane (docs/controlplane.md).
CLUSTER_STATE ?= .state/cluster

.PHONY: controlplane
controlplane: ## build or reuse the pinned control-plane binaries (~/.cache/storeplatform/bin)
	hack/controlplane/build.sh

.PHONY: cluster
cluster: venv controlplane ## start the local control plane in $(CLUSTER_STATE), print its kubeconfig
	$(PY) -m localkube start --state-dir $(CLUSTER_STATE)

.PHONY: cluster-down
cluster-down: venv ## stop the local control plane of make cluster, every process
	$(PY) -m localkube stop --state-dir $(CLUSTER_STATE)
