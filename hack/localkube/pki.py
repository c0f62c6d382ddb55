"""Certificates for one local cluster, made with the openssl command line.

One CA signs every serving and client certificate; client identities follow the
Kubernetes conventions (CN = user, O = group) so RBAC sees the usual names.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("localkube.pki")

OPENSSL_TIMEOUT = 60
CA_DAYS = 3650
CERT_DAYS = 825


@dataclass(frozen=True)
class Identity:
    """A certificate to issue: file stem, subject, SANs and usages."""

    name: str
    common_name: str
    organizations: tuple[str, ...] = ()
    sans: tuple[str, ...] = ()  # e.g. "IP:127.0.0.1", "DNS:localhost"
    server: bool = False
    client: bool = False


LOOPBACK_SANS = ("IP:127.0.0.1", "DNS:localhost")
APISERVER_SANS = (*LOOPBACK_SANS, "DNS:kubernetes", "DNS:kubernetes.default",
                  "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local")

IDENTITIES = (
    Identity("apiserver", "kube-apiserver", sans=APISERVER_SANS, server=True),
    Identity("controller-manager-serving", "kube-controller-manager", sans=LOOPBACK_SANS,
             server=True),
    Identity("scheduler-serving", "kube-scheduler", sans=LOOPBACK_SANS, server=True),
    Identity("admin", "localkube-admin", ("system:masters",), client=True),
    Identity("controller-manager", "system:kube-controller-manager", client=True),
    Identity("scheduler", "system:kube-scheduler", client=True),
    # KWOK plays the kubelet of every fake node and the executor reads Secrets and writes
    # pod status for many nodes: the Node authorizer would confine a node identity to one.
    Identity("kwok", "localkube:kwok", ("system:masters",), client=True),
    Identity("agents", "localkube:agents", ("system:masters",), client=True),
    # The API server's identity towards aggregated APIs; its CN is the one allowed to
    # pass X-Remote-User headers, which the controller manager and scheduler also trust.
    Identity("front-proxy-client", "front-proxy-client", client=True),
)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=OPENSSL_TIMEOUT)


def subject(identity: Identity) -> str:
    orgs = "".join(f"/O={org}" for org in identity.organizations)
    return f"{orgs}/CN={identity.common_name}"


def extensions(identity: Identity) -> str:
    """The x509v3 extension file body for a leaf certificate."""
    usages = [usage for usage, wanted in (("serverAuth", identity.server),
                                          ("clientAuth", identity.client)) if wanted]
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    if identity.sans:
        lines.append(f"subjectAltName={','.join(identity.sans)}")
    return "\n".join(lines) + "\n"


def new_ec_key(path: Path) -> None:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def make_ca(pki: Path) -> None:
    new_ec_key(pki / "ca.key")
    openssl("req", "-x509", "-new", "-key", str(pki / "ca.key"), "-subj", "/CN=localkube-ca",
            "-days", str(CA_DAYS), "-out", str(pki / "ca.crt"),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")


def issue(pki: Path, identity: Identity) -> None:
    key, csr, crt = (pki / f"{identity.name}.{ext}" for ext in ("key", "csr", "crt"))
    ext_file = pki / f"{identity.name}.ext"
    new_ec_key(key)
    ext_file.write_text(extensions(identity))
    openssl("req", "-new", "-key", str(key), "-subj", subject(identity), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"),
            "-CAkey", str(pki / "ca.key"), "-set_serial", f"0x{secrets.token_hex(16)}",
            "-days", str(CERT_DAYS), "-extfile", str(ext_file), "-out", str(crt))
    csr.unlink()
    ext_file.unlink()


def make_service_account_keys(pki: Path) -> None:
    """The key pair that signs and verifies ServiceAccount tokens (TokenRequest)."""
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(pki / "sa.key"))
    (pki / "sa.key").chmod(0o600)
    openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def ensure_pki(pki: Path) -> None:
    """Creates whatever is missing; an existing CA and keys are kept across restarts."""
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    if not (pki / "ca.crt").exists():
        make_ca(pki)
    if not (pki / "sa.pub").exists():
        make_service_account_keys(pki)
    for identity in IDENTITIES:
        if not (pki / f"{identity.name}.crt").exists():
            issue(pki, identity)
    log.debug("certificates ready in %s", pki)
