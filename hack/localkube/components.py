"""Command lines of the control-plane components (pure: paths and ports in, argv out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from localkube.options import KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE

HOST = "127.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Where the OIDC discovery document says the token keys are. Left unset, the API server
# would name its own advertise address (a host interface, not loopback); this name
# resolves to 127.0.0.1 inside every pod network namespace (localkube.podnet), where
# port 443 leads to the API server.
SERVICE_ACCOUNT_JWKS_URI = f"{SERVICE_ACCOUNT_ISSUER}/openid/v1/jwks"
# Only recorded in Service objects; nothing ever connects to these addresses.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"
ADMISSION_PLUGINS = (
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "DefaultStorageClass",
    "DefaultTolerationSeconds", "NodeRestriction", "PodSecurity", "ResourceQuota",
    "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook",
)


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


@dataclass(frozen=True)
class Layout:
    """Where one cluster keeps its files."""

    state_dir: Path

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run(self) -> Path:
        return self.state_dir / "run"

    @property
    def pods(self) -> Path:
        return self.state_dir / "pods"

    @property
    def volumes(self) -> Path:
        return self.state_dir / "volumes"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def cluster_file(self) -> Path:
        return self.state_dir / "cluster.json"

    def component_kubeconfig(self, name: str) -> Path:
        return self.state_dir / "kubeconfigs" / f"{name}.kubeconfig"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"


def server_url(ports: Ports) -> str:
    return f"https://{HOST}:{ports.apiserver}"


def etcd_argv(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    client = f"http://{HOST}:{ports.etcd_client}"
    peer = f"http://{HOST}:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"), "--name=localkube", f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=localkube={peer}", "--initial-cluster-state=new",
        # A throwaway test cluster: losing the last writes on a host crash is fine, waiting
        # for fsync on a shared disk is not.
        "--unsafe-no-fsync", "--log-level=warn",
    ]


def apiserver_argv(bin_dir: Path, layout: Layout, ports: Ports,
                   egress_config: Path | None = None) -> list[str]:
    pki = layout.pki
    # Cluster traffic (webhooks and other Services) goes through the local network's
    # CONNECT proxy (localkube.network), never to a ClusterIP.
    egress = [f"--egress-selector-config-file={egress_config}"] if egress_config else []
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://{HOST}:{ports.etcd_client}",
        f"--bind-address={HOST}", f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-jwks-uri={SERVICE_ACCOUNT_JWKS_URI}",
        # Only tokens for the API server itself authenticate to it: a token minted for the
        # Broker or a function (Knative OIDC audiences) is refused here.
        f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # The only address is loopback, which Endpoints may not hold: no `kubernetes`
        # endpoints (nothing runs in-cluster to use them).
        "--endpoint-reconciler-type=none",
        f"--requestheader-client-ca-file={pki / 'ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--allow-privileged=true", "--profiling=false",
        f"--cert-dir={pki}",
        *egress,
    ]


def _delegated_auth(kubeconfig: Path) -> list[str]:
    return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}"]


def controller_manager_argv(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    pki = layout.pki
    return [
        str(bin_dir / "kube-controller-manager"),
        *_delegated_auth(layout.component_kubeconfig("controller-manager")),
        f"--bind-address={HOST}", f"--secure-port={ports.controller_manager}",
        f"--tls-cert-file={pki / 'controller-manager-serving.crt'}",
        f"--tls-private-key-file={pki / 'controller-manager-serving.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--leader-elect=false", "--controllers=*",
        # Each controller acts as its own ServiceAccount, as on a kubeadm cluster.
        "--use-service-account-credentials=true",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        "--cluster-name=localkube", "--profiling=false",
    ]


def scheduler_argv(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    pki = layout.pki
    return [
        str(bin_dir / "kube-scheduler"),
        *_delegated_auth(layout.component_kubeconfig("scheduler")),
        f"--bind-address={HOST}", f"--secure-port={ports.scheduler}",
        f"--tls-cert-file={pki / 'scheduler-serving.crt'}",
        f"--tls-private-key-file={pki / 'scheduler-serving.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--leader-elect=false", "--profiling=false",
    ]


KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")


def kwok_argv(bin_dir: Path, layout: Layout) -> list[str]:
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={layout.component_kubeconfig('kwok')}",
        f"--config={KWOK_STAGES}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}",
        f"--cidr={POD_CIDR}",
        "--node-lease-duration-seconds=40",
    ]


def agents_argv(python: str, layout: Layout) -> list[str]:
    return [python, "-m", "localkube", "agents", "--state-dir", str(layout.state_dir)]
