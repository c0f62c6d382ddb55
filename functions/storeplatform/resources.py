"""Kubernetes objects the platform creates, built as plain data by small pure functions."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from storeplatform import contract as c

INSTALL = "install"
DELETE = "delete"
_JOB_PREFIX = {INSTALL: "helm-install-", DELETE: "helm-delete-"}

RUNNER_UID = 65532
RUNNER_TMP = "/tmp"  # noqa: S108 (the runner pod's own emptyDir)
CREDENTIAL_KEYS = (
    "mysql-root-password", "mysql-password", "admin-password",
    "wordpress-auth-key", "wordpress-secure-auth-key", "wordpress-logged-in-key",
    "wordpress-nonce-key", "wordpress-auth-salt", "wordpress-secure-auth-salt",
    "wordpress-logged-in-salt", "wordpress-nonce-salt",
)


def job_name(action: str, store: str) -> str:
    """Deterministic Job name: helm-install-<store> or helm-delete-<store>."""
    return _JOB_PREFIX[action] + store


def values_secret_name(store: str) -> str:
    """The platform-namespace Secret that carries the store's Helm values."""
    return job_name(INSTALL, store)


def store_labels(store: str) -> dict[str, str]:
    """Labels that tie an object back to the platform and its store."""
    return {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_STORE: store}


def namespace(store: str, engine: str, now: datetime) -> dict[str, Any]:
    """The store's namespace: platform labels, Pod Security `restricted`, creation time."""
    labels = store_labels(store) | {
        c.LABEL_ENGINE: engine,
        c.LABEL_CREATED_AT: str(int(now.timestamp())),
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": store,
            "labels": labels,
            "annotations": {c.ANNOTATION_CREATED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")},
        },
    }


def credentials_secret(store: str, token: Callable[[int], str] = secrets.token_urlsafe,
                       ) -> dict[str, Any]:
    """DB and admin credentials with fresh random values; created once per store."""
    data = {key: token(32) for key in CREDENTIAL_KEYS}
    data["admin-user"] = "admin"
    data["admin-email"] = f"admin@{store}.invalid"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": c.CREDENTIALS_SECRET, "namespace": store,
                     "labels": store_labels(store)},
        "stringData": data,
    }


def runner_role_binding(store: str, platform_namespace: str) -> dict[str, Any]:
    """Grants the Helm runner its ClusterRole inside the store's namespace only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": c.RUNNER_NAME, "namespace": store, "labels": store_labels(store)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": c.RUNNER_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": c.RUNNER_NAME,
                      "namespace": platform_namespace}],
    }


def chart_values(store: str, engine: str, base_domain: str | None) -> dict[str, Any]:
    """The per-store Helm values (store-chart/ci/platform-values.yaml mirrors them)."""
    values: dict[str, Any] = {
        "storeName": store,
        "engine": engine,
        "existingSecret": c.CREDENTIALS_SECRET,
    }
    if base_domain:
        values["ingress"] = {"baseDomain": base_domain}
    return values


def values_secret(store: str, engine: str, base_domain: str | None,
                  platform_namespace: str) -> dict[str, Any]:
    """The Helm values, handed to the runner by Secret reference (JSON is valid YAML)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": values_secret_name(store), "namespace": platform_namespace,
                     "labels": store_labels(store)},
        "stringData": {"values.yaml": json.dumps(chart_values(store, engine, base_domain))},
    }


def owner_reference(job: Mapping[str, Any]) -> dict[str, Any]:
    """An ownerReference to a created Job, so the Secret goes when the Job goes."""
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"],
            "blockOwnerDeletion": False}


def _env(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def runner_env(action: str, store: str, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Plain settings for the runner; the values arrive only as a secretKeyRef."""
    env = [
        _env("STORE_NAME", store),
        _env("HOME", RUNNER_TMP),
        _env("HELM_TIMEOUT", str(settings["HELM_TIMEOUT"])),
    ]
    if action == INSTALL:
        env += [
            _env("STORE_CHART", settings["RUNNER_CHART_PATH"]),
            _env("STORE_VALUES_PROFILE", settings["STORE_VALUES_PROFILE"]),
            {"name": "STORE_VALUES", "valueFrom": {"secretKeyRef": {
                "name": values_secret_name(store), "key": "values.yaml"}}},
        ]
    if settings.get("K_SINK"):
        env.append(_env("K_SINK", settings["K_SINK"]))
    return env


def runner_job(action: str, store: str, event_id: str,
               settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Job that runs `python -m storeplatform.runner <action>` for one store."""
    name = job_name(action, store)
    labels = store_labels(store) | {c.LABEL_COMPONENT: c.RUNNER_COMPONENT,
                                    c.LABEL_ACTION: action}
    container = {
        "name": "helm",
        "image": settings["RUNNER_IMAGE"],
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "storeplatform.runner", action],
        "env": runner_env(action, store, settings),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "tmp", "mountPath": RUNNER_TMP}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": settings["PLATFORM_NAMESPACE"],
                     "labels": labels, "annotations": {c.ANNOTATION_EVENT_ID: event_id}},
        "spec": {
            "backoffLimit": settings["JOB_BACKOFF_LIMIT"],
            "activeDeadlineSeconds": settings["JOB_DEADLINE_SECONDS"],
            "ttlSecondsAfterFinished": settings["JOB_TTL_SECONDS"],
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": c.RUNNER_NAME,
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUNNER_UID,
                        "runAsGroup": RUNNER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                },
            },
        },
    }
