"""The Helm runner: the entrypoint of the Job container (`python -m storeplatform.runner ACTION`).

install: repair a release a killed helm left in pending-*, `helm upgrade --install`, then
         `helm test` (the chart's test pod checks out an order through the storefront).
delete:  `helm uninstall`, then remove the store's namespace.
Either way it marks the namespace with the outcome and, when K_SINK is set, tells the Broker.
On failure it exits 1 and its last output line is the one-line reason (the pod's
terminationMessagePolicy is FallbackToLogsOnError; it also writes /dev/termination-log).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from storeplatform import config, contract
from storeplatform.errors import PlatformError
from storeplatform.events import new_event, read_token, send_event
from storeplatform.kube import Kube, connect
from storeplatform.status import one_line

log = logging.getLogger("storeplatform.runner")

TERMINATION_LOG = Path("/dev/termination-log")
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
HELM_GRACE_SECONDS = 60

Helm = Callable[[Sequence[str]], subprocess.CompletedProcess]


class RunnerError(RuntimeError):
    """A failure with a one-line reason for the Job's termination message."""


def install_args(store: str, chart: str, values_files: Sequence[str], timeout: str) -> list[str]:
    """`helm upgrade --install` for one store; the release and namespace are the store name."""
    args = ["upgrade", "--install", store, chart, "--namespace", store,
            "--wait=watcher", "--timeout", timeout, "--history-max", "5"]
    for path in values_files:
        args += ["--values", path]
    return args


def test_args(store: str, timeout: str) -> list[str]:
    """`helm test`: the chart's test pod buys a product through the storefront."""
    return ["test", store, "--namespace", store, "--timeout", timeout]


def uninstall_args(store: str, timeout: str) -> list[str]:
    return ["uninstall", store, "--namespace", store, "--wait=watcher", "--timeout", timeout,
            "--ignore-not-found"]


def history_args(store: str) -> list[str]:
    return ["history", store, "--namespace", store, "--output", "json", "--max", "10"]


def repair_args(store: str, history: list[Mapping[str, Any]], timeout: str) -> list[str] | None:
    """How to unstick a release whose last revision is pending-* (None: nothing to repair).

    A pending upgrade or rollback goes back to the last good revision; a pending first
    install is uninstalled so the install starts clean.
    """
    if not history:
        return None
    revisions = sorted(history, key=lambda h: int(h.get("revision", 0)))
    last = revisions[-1]
    if last.get("status") not in PENDING:
        return None
    good = [h for h in revisions[:-1] if h.get("status") in ("deployed", "superseded")]
    if good:
        return ["rollback", store, str(good[-1]["revision"]), "--namespace", store,
                "--wait=watcher", "--timeout", timeout]
    return ["uninstall", store, "--namespace", store, "--wait=watcher", "--timeout", timeout]


def run_helm(args: Sequence[str]) -> subprocess.CompletedProcess:
    """Run helm with a list of arguments (never a shell string)."""
    log.info("helm %s", " ".join(args[:3]))
    return subprocess.run(["helm", *args], capture_output=True, text=True, check=False,
                          timeout=_timeout_seconds(args) + HELM_GRACE_SECONDS)


def _timeout_seconds(args: Sequence[str]) -> int:
    """Seconds from a `--timeout 10m` style argument (default 5 minutes)."""
    if "--timeout" not in args:
        return 300
    text = args[args.index("--timeout") + 1]
    units = {"s": 1, "m": 60, "h": 3600}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise RunnerError(f"{what} failed: {one_line(result.stderr or result.stdout)}")


def install(env: Mapping[str, str], helm: Helm = run_helm) -> None:
    """Repair, then install or upgrade the store's release."""
    store, timeout = env["STORE_NAME"], env.get("HELM_TIMEOUT", "10m")
    chart = env["STORE_CHART"]
    history = helm(history_args(store))
    if history.returncode == 0 and history.stdout.strip():
        repair = repair_args(store, json.loads(history.stdout), timeout)
        if repair:
            log.info("release %s is pending; repairing with helm %s", store, repair[0])
            _check(helm(repair), f"helm {repair[0]} (repair)")
    profile = Path(chart) / f"values.{env.get('STORE_VALUES_PROFILE', 'local')}.yaml"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as values:
        values.write(env["STORE_VALUES"])
        values.flush()
        _check(helm(install_args(store, chart, [str(profile), values.name], timeout)),
               "helm upgrade --install")
    # "ready" means a visitor can buy: the test order must go through first.
    _check(helm(test_args(store, timeout)), "helm test (test order through the storefront)")


def delete(env: Mapping[str, str], helm: Helm = run_helm, kube: Kube | None = None) -> None:
    """Uninstall the release, then remove the namespace.

    A failed uninstall (a stuck hook, a release a killed helm left pending) does not stop
    the removal: deleting the namespace takes every object of the store with it, and a
    store left half-deleted is worse than a release record that goes with its namespace.
    """
    store, timeout = env["STORE_NAME"], env.get("HELM_TIMEOUT", "10m")
    uninstall = helm(uninstall_args(store, timeout))
    if uninstall.returncode != 0:
        log.warning("helm uninstall failed (%s); removing the namespace anyway",
                    one_line(uninstall.stderr or uninstall.stdout))
    if kube is not None:
        try:
            kube.delete_if_present("Namespace", store)
        except PlatformError as err:
            raise RunnerError(f"deleting namespace {store} failed: {err.message}") from err


def mark(kube: Kube, store: str, phase: str, reason: str | None) -> None:
    """Record the outcome on the namespace, where it outlives the Job (best effort)."""
    annotations = {contract.ANNOTATION_PHASE: phase, contract.ANNOTATION_REASON: reason}
    try:
        kube.patch("Namespace", store, {"metadata": {"annotations": annotations}})
    except PlatformError as err:  # the outcome is in the Job status anyway
        log.warning("could not mark namespace %s: %s", store, err.message)


def announce(sink: str, event_type: str, store: str, reason: str | None,
             token_file: str = "") -> None:
    """Tell the Broker what happened (best effort; lifecycle events are informative), with
    the pod's OIDC token for the Broker (token_file) when there is one."""
    if not sink:
        return
    data: dict[str, Any] = {"name": store}
    if reason:
        data["reason"] = reason
    try:
        event = new_event(event_type, contract.RUNNER_SOURCE, store, data)
        status, _, _ = send_event(sink, event, 5.0, read_token(token_file))
        if status >= 300:
            log.warning("the Broker refused %s: HTTP %s", event_type, status)
    except Exception as err:
        log.warning("could not announce %s: %s", event_type, one_line(str(err)))


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config.quiet_body_loggers()
    action = argv[1] if len(argv) > 1 else ""
    if action not in (contract.ACTION_INSTALL, contract.ACTION_DELETE):
        print("usage: python -m storeplatform.runner install|delete", file=sys.stderr)
        return 2
    store = contract.validate_store_name(env.get("STORE_NAME"))
    kube = connect({"KUBECONFIG": env.get("KUBECONFIG", ""), "KUBE_TIMEOUT": 10.0})
    sink, token_file = env.get("K_SINK", ""), env.get("BROKER_TOKEN_FILE", "")
    try:
        if action == contract.ACTION_INSTALL:
            install(env)
            mark(kube, store, "ready", None)
            announce(sink, contract.READY, store, None, token_file)
        else:
            delete(env, kube=kube)
            announce(sink, contract.DELETED, store, None, token_file)
    except (RunnerError, subprocess.TimeoutExpired, KeyError, OSError) as err:
        reason = one_line(str(err) if not isinstance(err, KeyError)
                          else f"missing setting {err}")
        if action == contract.ACTION_INSTALL:
            mark(kube, store, "failed", reason)
        announce(sink, contract.FAILED, store, reason, token_file)
        _terminate(reason)
        return 1
    log.info("%s %s: done", action, store)
    return 0


def _terminate(reason: str) -> None:
    if TERMINATION_LOG.exists():  # the kubelet made it; outside a pod the last line counts
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(reason)
    print(reason, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
