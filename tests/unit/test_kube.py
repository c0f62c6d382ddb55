"""The Kubernetes verbs, spoken over real HTTP by the real client to a small server on
127.0.0.1 that answers what a test needs (statuses the real API server rarely gives on demand).
The verbs against the real API server: tests/integration/test_kube.py.
"""

import json
import threading

import pytest
from werkzeug.wrappers import Response

from storeplatform import create_store, kube
from storeplatform.errors import Kind, PlatformError
from tests.helpers import Recorder, encode, error_of, free_port, serve
from tests.unit.conftest import RUNNER

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "ns"}}


def kubeconfig(tmp_path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return str(path)


def status_reply(status: int, message: str = "no"):
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "code": status}
    return lambda _req: Response(json.dumps(body), status=status,
                                 content_type="application/json")


@pytest.fixture
def api(tmp_path):
    """(verbs, recorder): Kube against a recorder that answers 200 {} unless told otherwise."""
    recorder = Recorder(lambda _req: Response(json.dumps({"items": [], "metadata": {}}),
                                              content_type="application/json"))
    with serve(recorder) as url:
        yield kube.connect({"KUBECONFIG": kubeconfig(tmp_path, url), "KUBE_TIMEOUT": 5.0}), \
            recorder


@pytest.mark.parametrize(("call", "method", "path"), [
    (lambda k: k.create_or_keep({"kind": "Namespace", "metadata": {"name": "store-a"}}),
     "POST", "/api/v1/namespaces"),
    (lambda k: k.create_or_keep(JOB), "POST", "/apis/batch/v1/namespaces/ns/jobs"),
    (lambda k: k.read_or_none("Job", "j", "ns"), "GET", "/apis/batch/v1/namespaces/ns/jobs/j"),
    (lambda k: k.delete_if_present("Namespace", "store-a"), "DELETE",
     "/api/v1/namespaces/store-a"),
    (lambda k: k.patch("Secret", "s", {"metadata": {}}, "ns"), "PATCH",
     "/api/v1/namespaces/ns/secrets/s"),
    (lambda k: k.list_items("Deployment", labels="a=b"), "GET", "/apis/apps/v1/deployments"),
    (lambda k: k.list_items("Event", "ns", fields="reason=X"), "GET",
     "/api/v1/namespaces/ns/events"),
    (lambda k: k.create_or_keep({"kind": "RoleBinding", "metadata": {"name": "r",
                                                                      "namespace": "s"}}),
     "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/s/rolebindings"),
    (lambda k: k.list_items("Ingress"), "GET", "/apis/networking.k8s.io/v1/ingresses"),
])
def test_each_verb_calls_the_kind_s_path(api, call, method, path):
    verbs, recorder = api
    call(verbs)
    assert (recorder.requests[-1]["method"], recorder.requests[-1]["path"]) == (method, path)


def test_delete_with_uid_sends_a_precondition_and_background_propagation(api):
    verbs, recorder = api
    verbs.delete_if_present("Job", "j", "ns", uid="u-1")
    assert json.loads(recorder.requests[-1]["body"]) == {
        "propagationPolicy": "Background", "preconditions": {"uid": "u-1"}}


def test_reads_are_raw_json(api):
    verbs, recorder = api
    recorder.reply = lambda _req: Response(json.dumps({"kind": "Job", "metadata": {"x": 1}}),
                                           content_type="application/json")
    assert verbs.read_or_none("Job", "j", "ns") == {"kind": "Job", "metadata": {"x": 1}}


@pytest.mark.parametrize(("call", "status", "result"), [
    (lambda k: k.create_or_keep(JOB), 409, None),
    (lambda k: k.read_or_none("Job", "j", "ns"), 404, None),
    (lambda k: k.delete_if_present("Job", "j", "ns"), 404, None),
    (lambda k: k.delete_if_present("Job", "j", "ns", uid="u-1"), 409, None),
])
def test_the_statuses_each_verb_promises_to_absorb(api, call, status, result):
    verbs, recorder = api
    recorder.reply = status_reply(status)
    assert call(verbs) is result


def test_create_or_replace_replaces_what_stands(api):
    verbs, recorder = api
    answers = iter([status_reply(409), lambda _req: Response("{}")])
    recorder.reply = lambda req: next(answers)(req)
    verbs.create_or_replace({"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}})
    assert [r["path"] for r in recorder.requests] == ["/api/v1/namespaces/ns/secrets",
                                                      "/api/v1/namespaces/ns/secrets/s"]


@pytest.mark.parametrize(("status", "kind", "code"), [
    (403, Kind.MISCONFIGURED, "kubernetes_forbidden"),
    (429, Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable"),
    (500, Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable"),
    (503, Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable"),
    (404, Kind.RETRY_LATER, "kubernetes_conflict"),
    (422, Kind.MISCONFIGURED, "kubernetes_rejected"),
])
def test_other_statuses_become_platform_errors(api, status, kind, code):
    verbs, recorder = api
    recorder.reply = status_reply(status, message='secrets "s" is forbidden: User "sa-x"')
    with pytest.raises(PlatformError) as err:
        verbs.patch("Secret", "s", {"metadata": {}}, "ns")
    assert (err.value.kind, err.value.code) == (kind, code)
    if status == 403:  # what was refused, and to whom: an operator can fix the RBAC
        assert 'User "sa-x"' in err.value.message
    else:  # nothing of the API server's text beyond the status
        assert "sa-x" not in err.value.message


def test_an_unreachable_api_server_is_upstream_unavailable(tmp_path):
    verbs = kube.connect({"KUBECONFIG": kubeconfig(tmp_path, f"http://127.0.0.1:{free_port()}"),
                          "KUBE_TIMEOUT": 2.0})
    with pytest.raises(PlatformError) as err:
        verbs.read_or_none("Namespace", "store-a")
    assert err.value.kind is Kind.UPSTREAM_UNAVAILABLE


def test_an_unreachable_api_server_is_a_503_the_broker_retries(tmp_path):
    """Through a whole function, over TLS as in a cluster: nothing listens on the port."""
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{free_port()}",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    app = create_store.create_app(RUNNER | {"KUBECONFIG": str(path), "KUBE_TIMEOUT": 2.0})
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, "binary")
    response = app.test_client().post("/", headers=headers, data=body)
    assert response.status_code == 503
    assert error_of(response)["code"] == "kubernetes_unavailable"


EVERY_VERB = {
    "create_or_keep": lambda k: k.create_or_keep(JOB),
    "create_or_replace": lambda k: k.create_or_replace(
        {"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}),
    "read_or_none": lambda k: k.read_or_none("Job", "j", "ns"),
    "delete_if_present": lambda k: k.delete_if_present("Job", "j", "ns", uid="u"),
    "patch": lambda k: k.patch("Namespace", "store-a", {"metadata": {}}),
    "list_items": lambda k: k.list_items("Pod", "ns", labels="a"),
    "dead-letter event": lambda k: k.create_or_keep(
        {"kind": "Event", "metadata": {"generateName": "dead-letter-", "namespace": "ns"}}),
}


@pytest.mark.parametrize("verb", sorted(EVERY_VERB))
def test_every_verb_gives_up_after_its_timeout(tmp_path, silent_server, verb):
    verbs = kube.connect({"KUBECONFIG": kubeconfig(tmp_path, silent_server),
                          "KUBE_TIMEOUT": 0.3})
    outcome: list = []

    def call():
        try:
            EVERY_VERB[verb](verbs)
        except PlatformError as err:
            outcome.append(err.kind)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(15)  # far above 2 attempts x 0.3 s: only a call without a timeout hangs here
    assert not thread.is_alive(), f"{verb} has no timeout"
    assert outcome == [Kind.UPSTREAM_UNAVAILABLE]
