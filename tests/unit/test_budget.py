"""The runner's time budget: the Job deadline covers every attempt of every helm call."""

import pytest
import storechart

from storeplatform import budget, runner
from tests.conftest import unavailable


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600),
                                               ("45", 45)])
def test_helm_durations(text, seconds):
    assert budget.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "0s", "-5m", "ten"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        budget.duration_seconds(text)


def install_attempt_calls(timeout: str) -> list[list[str]]:
    """Every helm call of one install attempt at its longest (a pending release repaired),
    as the runner builds them."""
    history = [{"revision": 1, "status": "deployed"}, {"revision": 2, "status": "pending-upgrade"}]
    return [runner.history_args("store-a"),
            runner.repair_args("store-a", history, timeout),
            runner.install_args("store-a", "/chart", ["/v.yaml"], timeout),
            ["status", "store-a", "--namespace", "store-a", "--output", "json"],  # hook_times
            runner.test_args("store-a", timeout)]


@pytest.mark.parametrize("timeout", ["90s", "3m", "10m", "1h"])
@pytest.mark.parametrize("backoff_limit", [0, 1, 2, 6])
def test_the_job_deadline_covers_every_attempt_of_every_helm_call(timeout, backoff_limit):
    per_attempt = sum(budget.helm_call_limit(args) for args in install_attempt_calls(timeout))
    delete_attempt = budget.helm_call_limit(runner.uninstall_args("store-a", timeout))
    assert delete_attempt <= per_attempt
    assert budget.attempt_seconds(timeout) >= per_attempt + budget.ATTEMPT_OVERHEAD_SECONDS
    waits = budget.pod_backoff_seconds(backoff_limit)
    deadline = budget.job_deadline_seconds(timeout, backoff_limit)
    assert deadline >= (backoff_limit + 1) * per_attempt + waits
    assert deadline == ((backoff_limit + 1) * budget.attempt_seconds(timeout) + waits
                        + budget.TERMINATION_GRACE_SECONDS)


def test_the_default_settings_give_the_deadline_the_docs_state():
    # HELM_TIMEOUT 10m, JOB_BACKOFF_LIMIT 2: 3 attempts of 60 (history) + 660 (repair) +
    # 1260 (upgrade --install: wait, then the hook) + 60 (status) + 660 (test) + 60 s,
    # 10 + 20 s of back-off between them, 30 s of grace (docs/contract.md).
    assert budget.helm_call_limit(runner.install_args("s", "/c", [], "10m")) == 1260
    assert budget.job_deadline_seconds("10m", 2) == 3 * 2760 + 30 + 30 == 8340


@pytest.fixture(scope="module")
def chart_hooks() -> dict[str, int]:
    helm = storechart.find_helm()
    if not helm:
        unavailable("helm not found: run `hack/controlplane/build.sh helm-kubectl`")
    result = storechart.render(helm, "production")
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = {}
    for doc in storechart.documents(result.stdout):
        hooks = (doc["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
        for hook in filter(None, (h.strip() for h in hooks.split(","))):
            counts[hook] = counts.get(hook, 0) + 1
    return counts


def test_the_timeout_periods_match_the_hooks_the_chart_has(chart_hooks):
    """Each hook helm runs waits up to the whole --timeout: a hook added to store-chart
    must raise the runner's budget too, or helm is killed while it legitimately waits."""
    # upgrade --install: its pre hooks, the wait, its post hooks (as install or upgrade).
    upgrade = max(chart_hooks.get(f"pre-{action}", 0) + 1 + chart_hooks.get(f"post-{action}", 0)
                  for action in ("install", "upgrade"))
    assert budget.TIMEOUT_PERIODS["upgrade"] >= upgrade, chart_hooks
    assert chart_hooks.get("test", 0) <= 1  # helm test: one timeout per test pod
    for no_hook in ("pre-rollback", "post-rollback", "pre-delete", "post-delete"):
        assert chart_hooks.get(no_hook, 0) == 0, no_hook  # repair and uninstall: one each


def test_pod_backoff_doubles_and_is_capped():
    assert [budget.pod_backoff_seconds(n) for n in range(4)] == [0, 10, 30, 70]
    assert budget.pod_backoff_seconds(10) == 10 + 20 + 40 + 80 + 160 + 320 + 4 * 360


def test_stopping_fits_in_the_grace_period():
    # On SIGTERM: helm's stop, then the one namespace mark (a connect retried once, then the
    # read, each with the runner's timeout); an interrupted runner announces nothing.
    worst = budget.HELM_STOP_SECONDS + 3 * budget.RUNNER_KUBE_TIMEOUT
    assert worst < budget.TERMINATION_GRACE_SECONDS


def test_a_password_reset_job_has_its_own_short_deadline():
    from storeplatform import contract, wpcli
    assert budget.deadline_for(contract.ACTION_RESET_ADMIN_PASSWORD, "10m", 0) == 600
    assert budget.RESET_DEADLINE_SECONDS >= wpcli.JOB_DEADLINE_SECONDS + 60 + 60
    assert budget.deadline_for(contract.ACTION_INSTALL, "10m", 2) == 8340
