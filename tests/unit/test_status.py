from datetime import UTC, datetime, timedelta

import pytest

from storeplatform import status

T0 = "2026-11-26T16:00:00+00:00"


def ns(name="store-a", phase=None, terminating=False, reason=None):
    annotations = {"storeplatform.io/created-at": "2026-11-26T16:00:00Z"}
    if phase:
        annotations["storeplatform.io/phase"] = phase
    if reason:
        annotations["storeplatform.io/reason"] = reason
    return {
        "metadata": {"name": name, "creationTimestamp": T0, "annotations": annotations,
                     "labels": {"storeplatform.io/store": name,
                                "storeplatform.io/engine": "woocommerce"}},
        "status": {"phase": "Terminating" if terminating else "Active"},
    }


def job(action="install", store="store-a", state="running", failed=0, created=T0):
    conditions = {"succeeded": [{"type": "Complete", "status": "True"}],
                  "failed": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                              "message": "Job has reached the specified backoff limit"}],
                  "running": []}[state]
    return {"metadata": {"name": f"helm-{action}-{store}", "creationTimestamp": created,
                         "labels": {"storeplatform.io/store": store}},
            "spec": {"backoffLimit": 2},
            "status": {"conditions": conditions, "failed": failed}}


def pod(job_name, phase="Running", exit_code=None, message=None, finished="2026-11-26T16:01:00Z"):
    status = {"phase": phase, "containerStatuses": []}
    if exit_code is not None:
        status["containerStatuses"] = [{"state": {"terminated": {
            "exitCode": exit_code, "message": message, "finishedAt": finished}}}]
    return {"metadata": {"labels": {"job-name": job_name, "storeplatform.io/store": "store-a"}},
            "status": status}


def deployment(available=1, store="store-a"):
    return {"metadata": {"namespace": store, "labels": {"storeplatform.io/store": store,
                                    "app.kubernetes.io/component": "wordpress"}},
            "status": {"availableReplicas": available}}


def ingress(host="store-a.localhost", tls=False, namespace="store-a"):
    spec = {"rules": [{"host": host}]}
    if tls:
        spec["tls"] = [{"hosts": [host], "secretName": "x"}]
    return {"metadata": {"namespace": namespace, "labels": {"storeplatform.io/store": "store-a"}},
            "spec": spec}


NOW = datetime(2026, 11, 26, 16, 1, tzinfo=UTC)  # a minute after the namespace was made


def one(namespace, jobs=(), pods=(), deployments=(), ingresses=(), letters=(), now=NOW):
    return status.store_status(namespace, list(jobs), list(pods), list(deployments),
                               list(ingresses), list(letters), now)


def test_new_namespace_without_job_is_provisioning():
    s = one(ns())
    assert s["status"] == "provisioning"
    assert s["progress"] == "waiting for the provisioning job"
    assert s["createdAt"] == "2026-11-26T16:00:00Z"
    assert s["engine"] == "woocommerce"


def test_running_job_reports_attempt():
    s = one(ns(), [job(failed=1)], [pod("helm-install-store-a")])
    assert s["status"] == "provisioning"
    assert s["progress"] == "helm install running (attempt 2 of 3)"


def test_finished_pod_of_a_running_job_does_not_go_back_to_waiting():
    s = one(ns(), [job()], [pod("helm-install-store-a", phase="Succeeded")])
    assert s["progress"] == "helm install finished; recording the result (attempt 1 of 3)"


def test_pending_pod_says_waiting_to_start():
    s = one(ns(), [job()], [pod("helm-install-store-a", phase="Pending")])
    assert s["progress"].startswith("waiting for the helm install pod to start")


def test_succeeded_job_and_available_wordpress_is_ready_with_urls():
    s = one(ns(), [job(state="succeeded")], [], [deployment()], [ingress()])
    assert s["status"] == "ready"
    assert s["storefrontUrl"] == "http://store-a.localhost/"
    assert s["adminUrl"] == "http://store-a.localhost/wp-admin/"
    assert s["reason"] is None


def test_tls_host_gives_https():
    s = one(ns(), [job(state="succeeded")], [], [deployment()], [ingress(tls=True)])
    assert s["storefrontUrl"] == "https://store-a.localhost/"


def test_succeeded_job_but_wordpress_unavailable_is_provisioning():
    s = one(ns(), [job(state="succeeded")], [], [deployment(available=0)])
    assert s["status"] == "provisioning"
    assert "WordPress" in s["progress"]


def test_failed_job_reason_comes_from_the_runner_termination_message():
    pods = [pod("helm-install-store-a", "Failed", 1, "helm upgrade --install failed: old",
                finished="2026-11-26T16:01:00Z"),
            pod("helm-install-store-a", "Failed", 1, "helm: boom\nhelm upgrade --install failed: x",
                finished="2026-11-26T16:02:00Z")]
    s = one(ns(), [job(state="failed", failed=3)], pods)
    assert s["status"] == "failed"
    assert s["reason"] == "helm upgrade --install failed: x"


def test_failed_job_without_pods_uses_the_job_condition():
    s = one(ns(), [job(state="failed")])
    assert s["reason"] == "Job has reached the specified backoff limit"


def test_job_expired_after_ttl_falls_back_to_namespace_phase():
    assert one(ns(phase="ready"), [], [], [deployment()])["status"] == "ready"
    failed = one(ns(phase="failed", reason="helm upgrade --install failed: quota"))
    assert failed["status"] == "failed"
    assert failed["reason"] == "helm upgrade --install failed: quota"


@pytest.mark.parametrize("namespace", [ns(terminating=True), ns(phase="deleting")])
def test_terminating_or_marked_namespace_is_deleting(namespace):
    assert one(namespace, [job(state="succeeded")], [], [deployment()])["status"] == "deleting"


def test_running_delete_job_is_deleting_with_progress():
    s = one(ns(phase="deleting"), [job("delete")], [pod("helm-delete-store-a")])
    assert s["status"] == "deleting"
    assert s["progress"].startswith("helm uninstall running")


def test_failed_delete_is_failed_with_reason():
    s = one(ns(phase="deleting"), [job("delete", state="failed")],
            [pod("helm-delete-store-a", "Failed", 1, "helm uninstall failed: timed out")])
    assert s["status"] == "failed"
    assert s["reason"] == "delete failed: helm uninstall failed: timed out"


def test_jobs_older_than_the_namespace_belong_to_an_earlier_store():
    old = job("delete", state="succeeded", created="2026-11-26T15:00:00+00:00")
    assert one(ns(), [old])["status"] == "provisioning"


def test_list_groups_by_label_and_sorts_by_creation():
    b = ns("store-b")
    b["metadata"]["annotations"]["storeplatform.io/created-at"] = "2026-11-26T15:59:00Z"
    stray = {"metadata": {"name": "store-x", "labels": {}}, "status": {}}
    stores = status.list_stores([ns("store-a"), b, stray],
                                [job(state="succeeded")], [], [deployment()], [ingress()],
                                now=NOW)
    assert [s["name"] for s in stores] == ["store-b", "store-a"]
    assert stores[1]["status"] == "ready"
    assert stores[0]["status"] == "provisioning"


def test_one_line_keeps_the_last_line_and_cuts():
    assert status.one_line("a\n\nb  \n") == "b"
    assert len(status.one_line("x" * 1000)) == 300


def test_a_store_with_an_unknown_engine_label_is_read_as_the_default():
    namespace = ns()
    namespace["metadata"]["labels"]["storeplatform.io/engine"] = "gone-engine"
    s = one(namespace, [job(state="succeeded")], [], [deployment()], [ingress()])
    assert (s["status"], s["engine"]) == ("ready", "gone-engine")
    assert s["adminUrl"] == "http://store-a.localhost/wp-admin/"


def test_an_ingress_or_deployment_in_another_namespace_never_speaks_for_a_store():
    """Labels are anyone's to set: only the store's own namespace counts."""
    spoofed_ingress = ingress(host="phish.example", namespace="attacker")
    spoofed_deployment = deployment() | {"metadata": {
        **deployment()["metadata"], "namespace": "attacker"}}
    stores = status.list_stores([ns("store-a")], [job(state="succeeded")], [],
                                [spoofed_deployment], [spoofed_ingress])
    assert stores[0]["adminUrl"] is None and stores[0]["storefrontUrl"] is None
    assert stores[0]["status"] == "provisioning"
    both = status.list_stores([ns("store-a")], [job(state="succeeded")], [],
                              [deployment()], [spoofed_ingress, ingress()])
    assert both[0]["adminUrl"] == "http://store-a.localhost/wp-admin/"
    assert both[0]["status"] == "ready"


# ---------------------------------------------------------------- no store stuck
def failed_job(action="install", reason="BackoffLimitExceeded", message="backoff limit",
               deadline=None):
    failed = job(action, state="failed")
    failed["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": reason,
                                       "message": message}]
    if deadline:
        failed["spec"]["activeDeadlineSeconds"] = deadline
    return failed


def oom_pod(job_name="helm-install-store-a"):
    return {"metadata": {"labels": {"job-name": job_name, "storeplatform.io/store": "store-a"}},
            "status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
                "exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-11-26T16:01:00Z",
                "message": "INFO helm upgrade"}}}]}}


def evicted_pod():
    return {"metadata": {"labels": {"job-name": "helm-install-store-a",
                                    "storeplatform.io/store": "store-a"}},
            "status": {"phase": "Failed", "reason": "Evicted",
                       "message": "The node was low on resource: memory."}}


@pytest.mark.parametrize(("jobs", "pods", "reason"), [
    ([failed_job(reason="DeadlineExceeded", message="Job was active longer than specified "
                 "deadline", deadline=8340)], [],
     "stopped at the Job deadline (8340 s)"),
    ([failed_job(reason="DeadlineExceeded", deadline=8340)],
     [pod("helm-install-store-a", "Failed", 1, "interrupted by SIGTERM during helm upgrade")],
     "stopped at the Job deadline (8340 s): interrupted by SIGTERM during helm upgrade"),
    ([failed_job()], [oom_pod()], "the runner was killed: out of memory (OOMKilled)"),
    ([failed_job()], [evicted_pod()],
     "the runner pod was evicted: The node was low on resource: memory."),
], ids=["deadline", "deadline-with-runner-message", "oom-killed", "evicted"])
def test_a_killed_runner_says_how_it_was_killed(jobs, pods, reason):
    s = one(ns(phase="provisioning"), jobs, pods)
    assert (s["status"], s["reason"], s["failedAction"]) == ("failed", reason, "create")


def test_an_interrupted_runner_whose_pod_is_gone_keeps_the_reason_it_recorded():
    s = one(ns(phase="failed", reason="interrupted by SIGTERM during helm upgrade"),
            [failed_job()], [])
    assert s["reason"] == "interrupted by SIGTERM during helm upgrade"


def test_a_runner_that_started_and_whose_job_is_gone_without_a_result_was_killed():
    s = one(ns(phase="provisioning"), [], [])
    assert (s["status"], s["failedAction"]) == ("failed", "create")
    assert s["reason"] == ("the install runner was killed before it recorded a result (out of "
                           "memory, evicted, or stopped at the Job deadline), and its Job is "
                           "gone; create the store again to retry")


def test_a_store_whose_install_job_never_came_is_failed_after_a_while():
    namespace = ns()
    assert one(namespace, [], [], now=NOW)["status"] == "provisioning"  # about to start
    s = one(namespace, [], [], now=NOW + timedelta(hours=2))
    assert (s["status"], s["failedAction"]) == ("failed", "create")
    assert s["reason"] == ("no install Job ran for this store and none recorded a result; "
                           "create the store again to retry")


def test_a_runner_killed_outright_says_so_with_its_last_output():
    killed = pod("helm-install-store-a", "Failed", 137, "INFO helm upgrade --install store-a")
    s = one(ns(phase="provisioning"), [failed_job()], [killed])
    assert s["reason"] == ("the runner was killed (signal 9, exit 137); its last output: "
                           "INFO helm upgrade --install store-a")


def test_a_delete_whose_job_is_gone_without_a_result_is_failed_and_retried_by_delete():
    namespace = ns(phase="deleting")
    namespace["metadata"]["annotations"]["storeplatform.io/phase-at"] = "2026-11-26T16:00:30Z"
    assert one(namespace, now=NOW)["status"] == "deleting"  # the Job is about to start
    s = one(namespace, now=NOW + timedelta(hours=2))
    assert (s["status"], s["failedAction"]) == ("failed", "delete")
    assert s["reason"].startswith("delete failed: the delete runner was killed")


def test_a_delete_the_runner_recorded_as_failed_is_retried_by_delete():
    s = one(ns(phase="failed", reason="delete failed: deleting namespace store-a failed: x"))
    assert (s["status"], s["failedAction"]) == ("failed", "delete")
    assert s["reason"] == "delete failed: deleting namespace store-a failed: x"


def test_a_failed_delete_job_reason_is_not_prefixed_twice():
    s = one(ns(phase="deleting"), [failed_job("delete")],
            [pod("helm-delete-store-a", "Failed", 1, "delete failed: helm uninstall: boom")])
    assert s["reason"] == "delete failed: helm uninstall: boom"


def letter(kind="delete", time="2026-11-26T16:00:40Z", subject="store-a"):
    return {"id": "e-9", "type": f"io.storeplatform.store.{kind}", "subject": subject,
            "time": time, "error": "HTTP 503 from http://delete-store kubernetes_unavailable"}


def test_an_undelivered_delete_shows_on_its_store_until_a_newer_job_takes_over():
    ready = [job(state="succeeded")], [], [deployment()]
    s = one(ns(), *ready, letters=[letter()])
    assert (s["status"], s["failedAction"]) == ("failed", "delete")
    assert s["reason"] == ("delete was not delivered (HTTP 503 from http://delete-store "
                           "kubernetes_unavailable); delete again to retry")
    # A delete sent again made its Job after the dead letter: the store is deleting.
    retried = one(ns(phase="deleting"), [job(state="succeeded"),
                                         job("delete", created="2026-11-26T16:00:50+00:00")],
                  [], [deployment()], letters=[letter()])
    assert retried["status"] == "deleting"


def test_a_long_dead_letter_error_is_cut_but_the_retry_hint_stays():
    long = letter() | {"error": "HTTP 500 " + "x" * 500}
    reason = one(ns(), [job(state="succeeded")], [], [deployment()], letters=[long])["reason"]
    assert len(reason) < 300 and reason.endswith("…); delete again to retry")


@pytest.mark.parametrize("other", [
    letter(kind="create"),  # an undelivered create of a store that stands changes nothing
    letter(subject="store-b"),
    letter(time="2026-11-26T15:00:00Z"),  # a dead letter of an earlier store of that name
], ids=["create", "other-store", "earlier-store"])
def test_other_dead_letters_leave_the_store_as_it_is(other):
    assert one(ns(), [job(state="succeeded")], [], [deployment()],
               letters=[other])["status"] == "ready"


def test_a_create_after_an_unfinished_delete_is_provisioning_not_deleting():
    namespace = ns(phase="deleting")
    namespace["metadata"]["annotations"]["storeplatform.io/phase-at"] = "2026-11-26T16:00:10Z"
    s = one(namespace, [job(created="2026-11-26T16:00:20+00:00")],
            [pod("helm-install-store-a")])
    assert (s["status"], s["progress"]) == ("provisioning",
                                            "helm install running (attempt 1 of 3)")
