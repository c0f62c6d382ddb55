import subprocess

import pytest

from storeplatform import runner


def done(code=0, out="", err=""):
    return subprocess.CompletedProcess([], code, out, err)


class FakeHelm:
    """Records helm argument lists and answers from a script keyed by the subcommand."""

    def __init__(self, answers=None):
        self.calls = []
        self.answers = answers or {}

    def __call__(self, args):
        self.calls.append(list(args))
        return self.answers.get(args[0], done())


ENV = {"STORE_NAME": "store-a", "STORE_CHART": "/opt/store-chart", "HELM_TIMEOUT": "7m",
       "STORE_VALUES_PROFILE": "production", "STORE_VALUES": '{"storeName": "store-a"}'}


def test_install_args_are_a_list_with_release_namespace_and_values():
    args = runner.install_args("store-a", "/chart", ["/chart/values.local.yaml", "/tmp/v.yaml"],
                               "10m")
    assert args[:4] == ["upgrade", "--install", "store-a", "/chart"]
    assert args[args.index("--namespace") + 1] == "store-a"
    assert args[args.index("--timeout") + 1] == "10m"
    assert "--wait=watcher" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--values"] == [
        "/chart/values.local.yaml", "/tmp/v.yaml"]


@pytest.mark.parametrize(("history", "expected"), [
    ([], None),
    ([{"revision": 1, "status": "deployed"}], None),
    ([{"revision": 1, "status": "failed"}], None),
    ([{"revision": 1, "status": "pending-install"}],
     ["uninstall", "store-a", "--namespace", "store-a", "--wait=watcher", "--timeout", "5m"]),
    ([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "deployed"},
      {"revision": 3, "status": "pending-upgrade"}],
     ["rollback", "store-a", "2", "--namespace", "store-a", "--wait=watcher", "--timeout", "5m"]),
    ([{"revision": 2, "status": "pending-rollback"}, {"revision": 1, "status": "deployed"}],
     ["rollback", "store-a", "1", "--namespace", "store-a", "--wait=watcher", "--timeout", "5m"]),
])
def test_repair_of_pending_releases(history, expected):
    assert runner.repair_args("store-a", history, "5m") == expected


def test_install_repairs_then_installs_with_profile_and_secret_values():
    helm = FakeHelm({"history": done(out='[{"revision": 1, "status": "pending-install"}]')})
    seen_values = []
    original = helm.__call__

    def capture(args):
        if args[0] == "upgrade":
            path = args[[i for i, a in enumerate(args) if a == "--values"][-1] + 1]
            with open(path) as f:
                seen_values.append(f.read())
        return original(args)

    runner.install(ENV, helm=capture)
    assert [c[0] for c in helm.calls] == ["history", "uninstall", "upgrade", "test"]
    assert helm.calls[-1] == ["test", "store-a", "--namespace", "store-a", "--timeout", "7m"]
    upgrade = helm.calls[-2]
    assert "/opt/store-chart/values.production.yaml" in upgrade
    assert seen_values == ['{"storeName": "store-a"}']
    assert ENV["STORE_VALUES"] not in " ".join(upgrade)


def test_install_failure_raises_one_line_reason():
    helm = FakeHelm({"history": done(1, err="Error: release: not found"),
                     "upgrade": done(1, err="line one\nError: quota exceeded for pods\n")})
    with pytest.raises(runner.RunnerError) as err:
        runner.install(ENV, helm=helm)
    assert str(err.value) == "helm upgrade --install failed: Error: quota exceeded for pods"


def test_failed_test_order_fails_the_install():
    helm = FakeHelm({"history": done(out="[]"),
                     "test": done(1, err="Error: pod store-a-test failed")})
    with pytest.raises(runner.RunnerError) as err:
        runner.install(ENV, helm=helm)
    assert str(err.value) == ("helm test (test order through the storefront) failed: "
                              "Error: pod store-a-test failed")


def test_delete_uninstalls_ignoring_missing_release():
    helm = FakeHelm()
    runner.delete(ENV, helm=helm)
    assert helm.calls == [["uninstall", "store-a", "--namespace", "store-a", "--wait=watcher",
                           "--timeout", "7m", "--ignore-not-found"]]


def store_namespace(fake_kube):
    return fake_kube.add({"kind": "Namespace", "metadata": {"name": "store-a", "labels": {
        "storeplatform.io/store": "store-a"}}})


def test_delete_removes_the_namespace_even_when_uninstall_fails(caplog, fake_kube):
    store_namespace(fake_kube)
    helm = FakeHelm({"uninstall": done(1, err="Error: hook failed: timed out")})
    runner.delete(ENV, helm=helm, kube=fake_kube)
    assert fake_kube.of_kind("Namespace") == []
    assert "removing the namespace anyway" in caplog.text


def test_delete_of_a_namespace_already_gone_is_fine(fake_kube):
    runner.delete(ENV, helm=FakeHelm(), kube=fake_kube)
    assert ("delete", "Namespace", "store-a") in fake_kube.calls


@pytest.mark.parametrize(("phase", "reason"), [("ready", None), ("failed", "helm test failed")])
def test_mark_records_the_outcome_on_the_namespace(fake_kube, phase, reason):
    store_namespace(fake_kube)["metadata"]["annotations"] = {"storeplatform.io/reason": "old"}
    runner.mark(fake_kube, "store-a", phase, reason)
    annotations = fake_kube.get("Namespace", "store-a")["metadata"]["annotations"]
    assert annotations.get("storeplatform.io/phase") == phase
    assert annotations.get("storeplatform.io/reason") == reason


def test_mark_is_best_effort(fake_kube, caplog):
    runner.mark(fake_kube, "store-gone", "ready", None)  # no namespace: the patch fails
    assert "could not mark namespace store-gone" in caplog.text


def test_bad_action_is_usage_error(capsys):
    assert runner.main(["runner", "explode"], {}) == 2
    assert "usage" in capsys.readouterr().err


# ---------------------------------------------------------------- issue 15: timeline, events


def test_install_reports_between_the_helm_install_and_the_test_order():
    helm = FakeHelm()
    seen = []
    runner.install(ENV, helm, installed=lambda: seen.append([c[0] for c in helm.calls]))
    assert seen == [["history", "upgrade"]]
    assert [c[0] for c in helm.calls] == ["history", "upgrade", "test"]


def test_hook_times_come_from_helms_release_record():
    status = ('{"hooks": [{"events": ["post-install"], "last_run": {"started_at": '
              '"2026-01-01T10:01:00Z"}}, {"events": ["test"], "last_run": {"started_at": '
              '"2026-01-01T10:03:00Z"}}]}')
    helm = FakeHelm({"status": done(out=status)})
    assert runner.hook_times("store-a", helm) == {"setup": "2026-01-01T10:01:00Z",
                                                  "test": "2026-01-01T10:03:00Z"}
    assert helm.calls == [["status", "store-a", "--namespace", "store-a", "--output", "json"]]
    assert runner.hook_times("store-a", FakeHelm({"status": done(1, err="no")})) == {}
    assert runner.hook_times("store-a", FakeHelm({"status": done(out="not json")})) == {}


def test_events_say_the_action_and_the_seconds_since_the_request():
    details = runner.request_details({"REQUESTED_AT": "2000-01-01T00:00:00Z"}, "install")
    assert details["action"] == "install" and details["durationSeconds"] > 10**8
    assert runner.request_details({}, "delete") == {"action": "delete"}


def test_the_lifecycle_event_continues_the_trace(broker):
    from tests.helpers import received_event

    child = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
    runner.announce(broker.url, "io.storeplatform.store.ready", "store-a", None,
                    {"action": "install", "durationSeconds": 3.0}, child)
    event = received_event(broker)
    assert event.get_extension("traceparent") == child
    assert event.get_data() == {"name": "store-a", "action": "install", "durationSeconds": 3.0}


def test_the_last_line_of_a_failure_is_a_json_record_of_the_reason():
    import io
    import json
    import logging

    from storeplatform import logs, status

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        runner._terminate("helm upgrade --install failed: boom")
    finally:
        logging.getLogger().removeHandler(handler)
    last = out.getvalue().strip().splitlines()[-1]
    assert json.loads(last)["message"] == "helm upgrade --install failed: boom"
    pod = {"status": {"containerStatuses": [{"state": {"terminated": {
        "exitCode": 1, "message": f"other output\n{last}\n"}}}]}}
    assert status._failure_reason({}, [pod]) == "helm upgrade --install failed: boom"


@pytest.mark.parametrize(("current", "changed"), [("provisioning", True), ("deleting", False)])
def test_a_conditional_mark_never_overwrites_another_phase(fake_kube, caplog, current, changed):
    store_namespace(fake_kube)["metadata"]["annotations"] = {"storeplatform.io/phase": current}
    runner.mark(fake_kube, "store-a", "failed", "interrupted", only_if="provisioning")
    annotations = fake_kube.get("Namespace", "store-a")["metadata"]["annotations"]
    assert (annotations["storeplatform.io/phase"] == "failed") is changed
    assert annotations.get("storeplatform.io/reason") == ("interrupted" if changed else None)
    assert ("could not mark namespace store-a" in caplog.text) is not changed


def test_marks_say_when(fake_kube):
    store_namespace(fake_kube)
    runner.mark(fake_kube, "store-a", "provisioning", None)
    annotations = fake_kube.get("Namespace", "store-a")["metadata"]["annotations"]
    assert annotations["storeplatform.io/phase-at"].endswith("Z")


def test_run_helm_gives_up_on_a_helm_past_its_limit(tmp_path, monkeypatch):
    slow = tmp_path / "helm"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(runner.budget, "QUICK_CALL_SECONDS", 1)
    with pytest.raises(runner.RunnerError) as err:
        runner.run_helm(runner.history_args("store-a"), stop=runner.Stop(), binary=str(slow))
    assert str(err.value) == "helm history did not finish within 1 s; it was killed"
