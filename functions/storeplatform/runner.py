"""The Helm runner: the entrypoint of the Job container (`python -m storeplatform.runner ACTION`).

install: repair a release a killed helm left in pending-*, `helm upgrade --install`, then
         `helm test` (the chart's test pod checks out an order through the storefront).
delete:  `helm uninstall`, then remove the store's namespace.
reset-admin-password: a new admin password with wp-cli, handed over once (storeplatform.wpcli).
It marks the namespace when an install or delete starts (so a runner killed outright is seen
as such) and with the outcome, and, when K_SINK is set, tells the Broker (continuing the
request's trace, TRACEPARENT). An install records its steps in time on the namespace
(storeplatform.timeline). Logs are JSON lines carrying the store, action, event id and trace
id. On failure it exits 1 and its last output line is the one-line reason as a JSON record
(the pod's terminationMessagePolicy is FallbackToLogsOnError; it also writes
/dev/termination-log).

It runs as PID 1, which ignores SIGTERM unless it handles it: on SIGTERM (pod deleted,
evicted, Job deadline) it passes the signal to helm, gives helm HELM_STOP_SECONDS to stop,
records the interruption and exits inside the grace period (budget.py). The next run
repairs whatever helm left pending.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from storeplatform import budget, config, contract, logs, timeline, tracing, wpcli
from storeplatform.errors import PlatformError
from storeplatform.events import new_event, read_token, send_event
from storeplatform.kube import Kube, connect
from storeplatform.status import one_line

log = logging.getLogger("storeplatform.runner")

TERMINATION_LOG = Path("/dev/termination-log")
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
ACTIONS = (contract.ACTION_INSTALL, contract.ACTION_DELETE, contract.ACTION_RESET_ADMIN_PASSWORD)

Helm = Callable[[Sequence[str]], subprocess.CompletedProcess]


class RunnerError(RuntimeError):
    """A failure with a one-line reason for the Job's termination message."""


class Interrupted(RunnerError):
    """SIGTERM arrived: the pod is being stopped."""


class Stop:
    """SIGTERM as the runner sees it: when it came, and the helm process to pass it to."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.helm: subprocess.Popen | None = None

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("got %s: passing it to helm", signal.Signals(signum).name)
        if self.helm is not None and self.helm.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.helm.send_signal(signal.SIGTERM)

    def check(self, doing: str) -> None:
        """Raise Interrupted when SIGTERM came (before or during `doing`)."""
        if self.since is not None:
            raise Interrupted(f"interrupted by SIGTERM during {doing} (the pod was deleted, "
                              "evicted or reached the Job deadline); the next run repairs "
                              "the release")


STOP = Stop()


def handle_signals(stop: Stop = STOP) -> None:
    """PID 1 gets no default action for SIGTERM: install the handler explicitly."""
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)


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


def run_helm(args: Sequence[str], stop: Stop = STOP,
             binary: str = "helm") -> subprocess.CompletedProcess:
    """Run helm with a list of arguments (never a shell string), within its limit
    (budget.helm_call_limit); on SIGTERM helm gets it too, and HELM_STOP_SECONDS to stop.
    """
    log.info("helm %s", " ".join(args[:3]))
    stop.check(f"helm {args[0]}")
    limit = budget.helm_call_limit(args)
    started = time.monotonic()
    proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    stop.helm = proc
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stop.since is not None:
                    stop.handle(signal.SIGTERM, None)  # helm may have started after it came
                    if time.monotonic() - stop.since > budget.HELM_STOP_SECONDS:
                        proc.kill()
                elif time.monotonic() - started > limit:
                    proc.kill()
                    proc.communicate()
                    raise RunnerError(f"helm {args[0]} did not finish within {limit} s; "
                                      "it was killed") from None
    finally:
        stop.helm = None
    stop.check(f"helm {args[0]}")
    return subprocess.CompletedProcess([binary, *args], proc.returncode, out, err)


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode < 0:  # killed by a signal: SIGKILL is what the OOM killer sends
        name = signal.Signals(-result.returncode).name
        hint = " (out of memory?)" if result.returncode == -signal.SIGKILL else ""
        raise RunnerError(f"{what} was killed by {name}{hint}; the next run repairs the release")
    if result.returncode != 0:
        raise RunnerError(f"{what} failed: {one_line(result.stderr or result.stdout)}")


def install(env: Mapping[str, str], helm: Helm = run_helm,
            installed: Callable[[], None] = lambda: None) -> None:
    """Repair, then install or upgrade the store's release (then `installed()`), then test."""
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
    installed()
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


def mark(kube: Kube, store: str, phase: str, reason: str | None,
         only_if: str | None = None) -> None:
    """Record the phase on the namespace, where it outlives the Job (best effort).

    With only_if, only while the phase is still that one (a JSON patch `test`): a runner
    stopped because the store is being deleted must not overwrite `deleting`.
    """
    marked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch: Any = {"metadata": {"annotations": {contract.ANNOTATION_PHASE: phase,
                                               contract.ANNOTATION_REASON: reason,
                                               contract.ANNOTATION_PHASE_AT: marked_at}}}
    if only_if is not None:
        patch = [{"op": "test", "path": _annotation_path(contract.ANNOTATION_PHASE),
                  "value": only_if},
                 {"op": "add", "path": _annotation_path(contract.ANNOTATION_PHASE),
                  "value": phase},
                 {"op": "add", "path": _annotation_path(contract.ANNOTATION_REASON),
                  "value": reason or ""},
                 {"op": "add", "path": _annotation_path(contract.ANNOTATION_PHASE_AT),
                  "value": marked_at}]
    try:
        kube.patch("Namespace", store, patch)
    except PlatformError as err:  # the outcome is in the Job status anyway
        log.warning("could not mark namespace %s: %s", store, err.message)


def _annotation_path(key: str) -> str:
    """The JSON pointer (RFC 6901) of an annotation."""
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")


def start_phase(action: str) -> str | None:
    """The phase an install or delete runner marks when it starts: still there once it is
    gone means it was killed before it could record a result (status.py reads it so). A
    password reset changes no phase."""
    return {contract.ACTION_INSTALL: "provisioning", contract.ACTION_DELETE: "deleting"}.get(
        action)


def announce(sink: str, event_type: str, store: str, reason: str | None,
             details: Mapping[str, Any] | None = None, traceparent: str | None = None,
             token_file: str = "") -> None:
    """Tell the Broker what happened (best effort; lifecycle events are informative), with
    the pod's OIDC token for the Broker (token_file) when there is one."""
    if not sink:
        return
    data: dict[str, Any] = {"name": store, **(details or {})}
    if reason:
        data["reason"] = reason
    try:
        event = new_event(event_type, contract.RUNNER_SOURCE, store, data, traceparent)
        status, _, _ = send_event(sink, event, budget.ANNOUNCE_TIMEOUT, read_token(token_file))
        if status >= 300:
            log.warning("the Broker refused %s: HTTP %s", event_type, status)
    except Exception as err:
        log.warning("could not announce %s: %s", event_type, one_line(str(err)))


def stamp(kube: Kube, store: str, steps: Mapping[str, str]) -> None:
    """Record the timeline so far on the namespace (best effort, like mark)."""
    try:
        kube.patch("Namespace", store, {"metadata": {"annotations": timeline.annotation(steps)}})
    except PlatformError as err:
        log.warning("could not record the timeline of %s: %s", store, err.message)


def hook_times(store: str, helm: Helm = run_helm) -> dict[str, str]:
    """When Helm ran the set-up and test hooks of the release (empty when it cannot say)."""
    result = helm(["status", store, "--namespace", store, "--output", "json"])
    try:
        return timeline.hook_starts(json.loads(result.stdout)) if result.returncode == 0 else {}
    except ValueError:
        return {}


def request_details(env: Mapping[str, str], action: str) -> dict[str, Any]:
    """What the runner's events say besides the store: the action, and seconds since the
    request (REQUESTED_AT), for the duration histograms of list-stores."""
    details: dict[str, Any] = {"action": action}
    requested = timeline.parse_time(env.get("REQUESTED_AT"))
    if requested is not None:
        details["durationSeconds"] = round(
            (datetime.now(UTC) - requested).total_seconds(), 3)
    return details


def main(argv: Sequence[str], env: Mapping[str, str], helm: Helm = run_helm,
         stop: Stop = STOP) -> int:
    trace = tracing.parse(env.get(tracing.ENV))
    logs.setup("INFO")
    config.quiet_body_loggers()
    action = argv[1] if len(argv) > 1 else ""
    logs.bind(store=env.get("STORE_NAME"), action=action, event_id=env.get("EVENT_ID"),
              trace_id=trace.trace_id if trace else None)
    if action not in ACTIONS:
        print(f"usage: python -m storeplatform.runner {'|'.join(ACTIONS)}", file=sys.stderr)
        return 2
    handle_signals(stop)
    store = contract.validate_store_name(env.get("STORE_NAME"))
    kube = connect({"KUBECONFIG": env.get("KUBECONFIG", ""),
                    "KUBE_TIMEOUT": budget.RUNNER_KUBE_TIMEOUT})
    sink, token_file = env.get("K_SINK", ""), env.get("BROKER_TOKEN_FILE", "")
    started = start_phase(action)
    child = trace.child().header() if trace else None
    steps = {"queued": env.get("REQUESTED_AT") or timeline.now_text(),
             "install": timeline.now_text()}
    try:
        if started:
            mark(kube, store, started, None)
        if action == contract.ACTION_INSTALL:
            stamp(kube, store, steps)

            def installed() -> None:
                steps.update(hook_times(store, helm))
                steps["test"] = timeline.now_text()
                stamp(kube, store, steps)

            install(env, helm=helm, installed=installed)
            stop.check("the install")
            mark(kube, store, "ready", None, only_if=started)
            stamp(kube, store, steps | {"ready": timeline.now_text()})
            announce(sink, contract.READY, store, None, request_details(env, action), child,
                     token_file)
        elif action == contract.ACTION_RESET_ADMIN_PASSWORD:
            cli = wpcli.choose_cli(env.get("WP_CLI", "job"), kube, run_helm)
            wpcli.reset_admin_password(env, kube, cli)
            announce(sink, contract.ADMIN_PASSWORD_CHANGED, store, None,
                     request_details(env, action), child, token_file)
        else:
            delete(env, helm=helm, kube=kube)
            announce(sink, contract.DELETED, store, None, request_details(env, action), child,
                     token_file)
    except (RunnerError, wpcli.ResetError, subprocess.TimeoutExpired, KeyError,
            OSError) as err:
        reason = one_line(str(err) if not isinstance(err, KeyError)
                          else f"missing setting {err}")
        if action == contract.ACTION_DELETE:
            reason = f"delete failed: {reason}"
        if started:
            # Only over the runner's own start mark: `deleting` (a delete stopped this
            # install) or a newer runner's mark stays as it is.
            mark(kube, store, "failed", reason, only_if=started)
        if action == contract.ACTION_INSTALL:
            stamp(kube, store, steps | {"failed": timeline.now_text()})
        if not isinstance(err, Interrupted):
            announce(sink, contract.FAILED, store, reason, request_details(env, action), child,
                     token_file)
        _terminate(reason)
        return 1
    log.info("%s %s: done", action, store)
    return 0


def _terminate(reason: str) -> None:
    """The reason as the termination message: /dev/termination-log in a pod, and the last
    log line (a JSON record whose message is the reason; status.py reads either)."""
    if TERMINATION_LOG.exists():  # the kubelet made it; outside a pod the last line counts
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(reason)
    log.error("%s", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
