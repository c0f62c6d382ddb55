"""A store's Kubernetes objects as plain data, each built by a small pure function.

Names, labels and annotations come from contract; what differs per engine from engines.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from storeplatform import budget, contract, engines

Obj = dict[str, Any]

RUNNER_UID = 65532
RUNNER_TMP = "/tmp"  # noqa: S108 (the runner pod's own emptyDir)
# The runner's OIDC token for the Broker: a projected ServiceAccount token whose audience is
# the Broker's alone (the API server refuses it), renewed by the kubelet.
BROKER_TOKEN_DIR = "/var/run/storeplatform/broker"  # noqa: S105 (a mount path)
BROKER_TOKEN_PATH = "token"  # noqa: S105 (a file name)
BROKER_TOKEN_SECONDS = 3600


def namespace(store: str, engine: str, now: datetime) -> Obj:
    """The store's namespace: platform labels, Pod Security `restricted`, creation time."""
    labels = contract.store_labels(store) | {
        contract.LABEL_ENGINE: engine,
        contract.LABEL_CREATED_AT: str(int(now.timestamp())),
        **contract.POD_SECURITY_LABELS,
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": store,
            "labels": labels,
            "annotations": {contract.ANNOTATION_CREATED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")},
        },
    }


def credentials_secret(store: str, engine: str,
                       token: Callable[[int], str] = secrets.token_urlsafe) -> Obj:
    """The engine's credentials with fresh random values, plus the admin's login; made once."""
    data = {key: token(32) for key in engines.get(engine).credential_keys}
    data["admin-user"] = "admin"
    data["admin-email"] = f"admin@{store}.invalid"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": contract.CREDENTIALS_SECRET, "namespace": store,
                     "labels": contract.store_labels(store)},
        "stringData": data,
    }


def runner_role_binding(store: str, platform_namespace: str) -> Obj:
    """Grants the store's own runner account its ClusterRole inside the store's namespace
    only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": contract.RUNNER_NAME, "namespace": store,
                     "labels": contract.store_labels(store)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": contract.RUNNER_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": contract.runner_account(store),
                      "namespace": platform_namespace}],
    }


def runner_service_account(store: str, platform_namespace: str,
                           store_namespace: Mapping[str, Any]) -> Obj:
    """The store's runner identity, in the platform namespace (where its Jobs run and outlive
    the store's namespace on delete), owned by that namespace: it goes when the store goes.
    No Secret refers to it: its pods get bound tokens only."""
    meta = store_namespace["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": contract.runner_account(store), "namespace": platform_namespace,
                     "labels": contract.store_labels(store) | {
                         contract.LABEL_COMPONENT: contract.RUNNER_COMPONENT},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "blockOwnerDeletion": False}]},
    }


def chart_values(store: str, engine: str, base_domain: str | None) -> Obj:
    """The per-store Helm values (store-chart/ci/platform-values.yaml mirrors them)."""
    values: Obj = {"storeName": store, "existingSecret": contract.CREDENTIALS_SECRET,
                   **engines.get(engine).chart_values}
    if base_domain:
        values["ingress"] = {"baseDomain": base_domain}
    return values


def values_secret(store: str, engine: str, base_domain: str | None,
                  platform_namespace: str) -> Obj:
    """The Helm values, handed to the runner by Secret reference (JSON is valid YAML)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": contract.values_secret_name(store), "namespace": platform_namespace,
                     "labels": contract.store_labels(store)},
        "stringData": {"values.yaml": json.dumps(chart_values(store, engine, base_domain))},
    }


def owner_reference(job: Mapping[str, Any]) -> Obj:
    """An ownerReference to a created Job, so the Secret goes when the Job goes."""
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"],
            "blockOwnerDeletion": False}


def _env(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def runner_env(action: str, store: str, settings: Mapping[str, Any]) -> list[Obj]:
    """Plain settings for the runner; the values arrive only as a secretKeyRef."""
    env: list[Obj] = [
        _env("STORE_NAME", store),
        _env("HOME", RUNNER_TMP),
        _env("HELM_TIMEOUT", str(settings["HELM_TIMEOUT"])),
    ]
    if action == contract.ACTION_INSTALL:
        env += [
            _env("STORE_CHART", settings["RUNNER_CHART_PATH"]),
            _env("STORE_VALUES_PROFILE", settings["STORE_VALUES_PROFILE"]),
            {"name": "STORE_VALUES", "valueFrom": {"secretKeyRef": {
                "name": contract.values_secret_name(store), "key": "values.yaml"}}},
        ]
    if action == contract.ACTION_RESET_ADMIN_PASSWORD:
        env += [_env("RESET_ID", settings["EVENT_ID"]),
                _env("WP_CLI", settings["RUNNER_WP_CLI"])]
    if settings.get("K_SINK"):
        env += [_env("K_SINK", settings["K_SINK"]),
                _env("BROKER_TOKEN_FILE", f"{BROKER_TOKEN_DIR}/{BROKER_TOKEN_PATH}")]
    env += [_env(key, settings[key]) for key in REQUEST_FACTS if settings.get(key)]
    return env


# What the runner learns of the request that started its Job (events.request_facts): its
# event, when it was asked for (durations, the timeline) and the trace to continue.
REQUEST_FACTS = ("EVENT_ID", "REQUESTED_AT", "TRACEPARENT")


def runner_container(action: str, store: str, settings: Mapping[str, Any]) -> Obj:
    """`python -m storeplatform.runner <action>`: restricted, bounded, reasons in its log."""
    return {
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
        "volumeMounts": [{"name": "tmp", "mountPath": RUNNER_TMP},
                         {"name": "broker-token", "mountPath": BROKER_TOKEN_DIR,
                          "readOnly": True}],
    }


def broker_token_volume(audience: str) -> Obj:
    """The projected token the runner announces its outcome to the Broker with."""
    return {"name": "broker-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": audience, "expirationSeconds": BROKER_TOKEN_SECONDS,
        "path": BROKER_TOKEN_PATH}}]}}


def runner_job(action: str, store: str, event_id: str, settings: Mapping[str, Any]) -> Obj:
    """The Job that runs the runner for one store, named by contract.job_name."""
    labels = contract.store_labels(store) | {contract.LABEL_COMPONENT: contract.RUNNER_COMPONENT,
                                             contract.LABEL_ACTION: action}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": contract.job_name(action, store),
                     "namespace": settings["PLATFORM_NAMESPACE"], "labels": labels,
                     "annotations": {contract.ANNOTATION_EVENT_ID: event_id}},
        "spec": {
            "backoffLimit": settings["JOB_BACKOFF_LIMIT"],
            # Covers every attempt of every helm timeout the runner has (budget.py).
            "activeDeadlineSeconds": budget.deadline_for(action, settings["HELM_TIMEOUT"],
                                                         settings["JOB_BACKOFF_LIMIT"]),
            "ttlSecondsAfterFinished": settings["JOB_TTL_SECONDS"],
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": contract.runner_account(store),
                    "restartPolicy": "Never",
                    # The runner passes SIGTERM to helm and records why it stopped within it.
                    "terminationGracePeriodSeconds": budget.TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUNNER_UID,
                        "runAsGroup": RUNNER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [runner_container(action, store, settings)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                                broker_token_volume(
                                    settings.get("BROKER_AUDIENCE") or contract.broker_audience(
                                        settings["PLATFORM_NAMESPACE"]))],
                },
            },
        },
    }
