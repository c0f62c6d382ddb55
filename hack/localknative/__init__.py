"""localknative: Knative on a local cluster (localkube): the real Eventing, Serving faked.

    from localknative import start, stop
    knative = start(cluster)            # after localkube.start(...)
    knative.broker_url("storeplatform", "default")  # the real ingress's cluster address
    stop(cluster.state_dir)             # localkube.stop does it too

Real: Knative Eventing v1.23 (knative.dev/eventing v0.50.0), built from Go modules by
`make controlplane`: the eventing controller and webhook, the in-memory channel controller
and dispatcher, the MT channel-based broker's controller, ingress and filter. Each runs as a
pod would: its own network namespace, its own ServiceAccount token, the env of its
Deployment in the release's `config/`, which is applied as it ships (CRDs, RBAC,
ConfigMaps, webhooks, Deployments and Services; KWOK keeps those Deployments' pods Ready
so Endpoints exist). The API server reaches the webhooks through localkube's network.

Faked: Knative Serving (localknative.serving: Services get a Ready status and an address;
their processes are started by whoever uses this, e.g. `make dev`).
"""

from localknative.install import Knative, StartError, start, stop

__all__ = ["Knative", "StartError", "start", "stop"]
