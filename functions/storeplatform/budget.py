"""How long the Helm runner may take: each helm call's limit, one attempt, and the Job
deadline that covers every attempt (docs/contract.md "Runner Job"). Pure; the runner and the
Job manifest both read it, so the deadline can never be shorter than what it contains.
"""

from __future__ import annotations

from collections.abc import Sequence

from storeplatform import contract

HELM_GRACE_SECONDS = 60  # beyond helm's own --timeout before the runner kills it
QUICK_CALL_SECONDS = 60  # helm calls without --timeout (history, status)
QUICK_CALLS = 2  # an install's `helm history` and the timeline's `helm status`
# Process start, the namespace marks and the Broker announcement of one attempt (each
# Kubernetes call has a 5 s timeout in the runner, the announcement 3 s).
ATTEMPT_OVERHEAD_SECONDS = 60
# The Job controller waits 10 s, 20 s, 40 s ... (at most 6 min) before re-creating a
# failed pod; that wait counts against activeDeadlineSeconds too.
POD_BACKOFF_SECONDS, POD_BACKOFF_MAX_SECONDS = 10, 360
# Helm 4 gives the resource wait and each hook the full --timeout, one after the other
# (pkg/action/upgrade.go: Wait(target, Timeout), then execHook(..., Timeout)): store-chart's
# one post-install/post-upgrade hook makes `upgrade --install` two timeouts long. Repair
# (rollback/uninstall, no hooks), uninstall and `helm test` (one test pod) take one each.
# tests/unit/test_budget.py counts the chart's hooks against these.
TIMEOUT_PERIODS = {"upgrade": 2}
INSTALL_PERIODS = 1 + 2 + 1  # repair, upgrade --install, test
INSTALL_CALLS_WITH_TIMEOUT = 3
# On SIGTERM: helm gets this long to stop, then SIGKILL; the runner then records why.
# Both together stay inside the pod's grace period.
HELM_STOP_SECONDS = 10
RUNNER_KUBE_TIMEOUT = 5.0
ANNOUNCE_TIMEOUT = 3.0
TERMINATION_GRACE_SECONDS = 30
# A password reset runs no helm: wp-cli in a Job of its own (wpcli.JOB_DEADLINE_SECONDS,
# 300 s), waited for 60 s more, once (backoffLimit 0), plus the grace and its marks.
RESET_DEADLINE_SECONDS = 600

_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> int:
    """Seconds of a helm --timeout value: `90s`, `10m`, `1h` or plain seconds."""
    value = str(text).strip()
    try:
        if value and value[-1] in _UNITS:
            seconds = int(value[:-1]) * _UNITS[value[-1]]
        else:
            seconds = int(value)
    except ValueError:
        raise ValueError(f"not a duration like 90s, 10m or 1h: {text!r}") from None
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {text!r}")
    return seconds


def helm_call_limit(args: Sequence[str]) -> int:
    """How long the runner lets one helm call run: its --timeout as many times as helm may
    spend it (TIMEOUT_PERIODS), plus the grace."""
    if "--timeout" not in args:
        return QUICK_CALL_SECONDS
    periods = TIMEOUT_PERIODS.get(args[0], 1)
    return periods * duration_seconds(args[args.index("--timeout") + 1]) + HELM_GRACE_SECONDS


def attempt_seconds(helm_timeout: str) -> int:
    """The longest one runner attempt can take (install: history, repair, upgrade
    --install, status, test; a delete, one uninstall, takes less)."""
    timeout = duration_seconds(helm_timeout)
    return (QUICK_CALLS * QUICK_CALL_SECONDS + INSTALL_PERIODS * timeout
            + INSTALL_CALLS_WITH_TIMEOUT * HELM_GRACE_SECONDS + ATTEMPT_OVERHEAD_SECONDS)


def pod_backoff_seconds(backoff_limit: int) -> int:
    """The Job controller's waits between the attempts."""
    return sum(min(POD_BACKOFF_SECONDS * 2 ** i, POD_BACKOFF_MAX_SECONDS)
               for i in range(backoff_limit))


def job_deadline_seconds(helm_timeout: str, backoff_limit: int) -> int:
    """activeDeadlineSeconds: every attempt (backoffLimit + 1) at its longest, the waits
    between them, and the grace the last one gets to stop."""
    attempts = int(backoff_limit) + 1
    return (attempts * attempt_seconds(helm_timeout) + pod_backoff_seconds(int(backoff_limit))
            + TERMINATION_GRACE_SECONDS)


def deadline_for(action: str, helm_timeout: str, backoff_limit: int) -> int:
    """activeDeadlineSeconds of a runner Job of this action."""
    if action == contract.ACTION_RESET_ADMIN_PASSWORD:
        return RESET_DEADLINE_SECONDS
    return job_deadline_seconds(helm_timeout, backoff_limit)
