"""The Kubernetes verbs, spoken over real HTTP by the real client to a small server on
127.0.0.1 that answers what a test needs (statuses the real API server rarely gives on demand).
The verbs against the real API server: tests/integration/test_kube.py.
"""

import contextlib
import json
import socket
import threading
import time
import urllib.parse

import pytest
from werkzeug.wrappers import Response

from storeplatform import create_store, kube
from storeplatform.errors import Kind, PlatformError
from tests.helpers import Recorder, encode, error_of, free_port, serve
from tests.unit.conftest import RUNNER

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "ns"}}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "7"}}


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


def test_replace_puts_the_version_it_read_and_a_409_is_a_conflict(api):
    verbs, recorder = api
    verbs.replace(CONFIG_MAP)
    request = recorder.requests[-1]
    assert (request["method"], request["path"]) == ("PUT", "/api/v1/namespaces/ns/configmaps/c")
    assert json.loads(request["body"])["metadata"]["resourceVersion"] == "7"
    recorder.reply = status_reply(409)
    with pytest.raises(PlatformError) as err:
        verbs.replace(CONFIG_MAP)
    assert (err.value.kind, err.value.code) == (Kind.RETRY_LATER, "kubernetes_conflict")


def test_delete_with_a_resource_version_sends_that_precondition(api):
    verbs, recorder = api
    assert verbs.delete_if_present("ConfigMap", "c", "ns", resource_version="7") is True
    assert json.loads(recorder.requests[-1]["body"]) == {
        "propagationPolicy": "Background", "preconditions": {"resourceVersion": "7"}}


def test_reads_are_raw_json(api):
    verbs, recorder = api
    recorder.reply = lambda _req: Response(json.dumps({"kind": "Job", "metadata": {"x": 1}}),
                                           content_type="application/json")
    assert verbs.read_or_none("Job", "j", "ns") == {"kind": "Job", "metadata": {"x": 1}}


@pytest.mark.parametrize(("call", "status", "result"), [
    (lambda k: k.create_or_keep(JOB), 409, None),
    (lambda k: k.read_or_none("Job", "j", "ns"), 404, None),
    (lambda k: k.delete_if_present("Job", "j", "ns"), 404, False),
    (lambda k: k.delete_if_present("Job", "j", "ns", uid="u-1"), 409, False),
    (lambda k: k.delete_if_present("ConfigMap", "c", "ns", resource_version="7"), 409, False),
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
def test_other_statuses_become_platform_errors(api, status, kind, code, caplog):
    verbs, recorder = api
    recorder.reply = status_reply(status, message='secrets "s" is forbidden: User "sa-x"')
    with caplog.at_level("WARNING", logger="storeplatform.kube"), \
            pytest.raises(PlatformError) as err:
        verbs.patch("Secret", "s", {"metadata": {}}, "ns")
    assert (err.value.kind, err.value.code) == (kind, code)
    # Nothing of the API server's text reaches the answer (it travels to dead letters).
    assert "sa-x" not in err.value.message
    if status == 403:  # what was refused, and to whom, is in the function's log
        assert "patch Secret" in err.value.message
        assert 'User "sa-x"' in caplog.text


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
    "replace": lambda k: k.replace(CONFIG_MAP),
    "json patch": lambda k: k.patch("Namespace", "store-a", [
        {"op": "test", "path": "/metadata/name", "value": "store-a"}]),
    "delete with resourceVersion": lambda k: k.delete_if_present(
        "ConfigMap", "c", "ns", resource_version="7"),
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


def test_a_versioned_list_reads_every_page(api):
    verbs, recorder = api
    pages = iter([{"items": [{"n": 1}], "metadata": {"continue": "t-1"}},
                  {"items": [{"n": 2}], "metadata": {"resourceVersion": "42"}}])
    recorder.reply = lambda _req: Response(json.dumps(next(pages)),
                                           content_type="application/json")
    items, version = verbs.list_versioned(kube.Selection("Pod", "ns", labels="a=b"))
    assert (items, version) == ([{"n": 1}, {"n": 2}], "42")
    first, second = (urllib.parse.parse_qs(r["query"]) for r in recorder.requests)
    assert first == {"labelSelector": ["a=b"], "limit": ["500"]}
    assert second["continue"] == ["t-1"]


def test_a_list_whose_pages_expired_is_expired(api):
    verbs, recorder = api
    recorder.reply = status_reply(410, "continue token expired")
    with pytest.raises(kube.Expired):
        verbs.list_versioned(kube.Selection("Pod", "ns"))


def watch_lines(*events):
    body = "".join(json.dumps(e) + "\n" for e in events)
    return lambda _req: Response(body, content_type="application/json")


def test_a_watch_yields_its_events_and_asks_for_bookmarks(api):
    verbs, recorder = api
    recorder.reply = watch_lines(
        {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    events = list(verbs.watch(kube.Selection("Namespace", labels="x=y"), "4", 30))
    assert [t for t, _ in events] == ["ADDED", "BOOKMARK"]
    query = urllib.parse.parse_qs(recorder.requests[-1]["query"])
    assert query == {"watch": ["True"], "resourceVersion": ["4"],  # as the client spells it
                     "allowWatchBookmarks": ["True"], "timeoutSeconds": ["30"],
                     "labelSelector": ["x=y"]}


def test_a_410_in_the_stream_or_as_the_answer_is_expired(api):
    verbs, recorder = api
    recorder.reply = watch_lines({"type": "ERROR", "object": {
        "kind": "Status", "code": 410, "reason": "Expired",
        "message": "too old resource version: 1 (262)"}})
    with pytest.raises(kube.Expired, match="too old"):
        list(verbs.watch(kube.Selection("Namespace"), "1", 30))
    recorder.reply = status_reply(410, "gone")
    with pytest.raises(kube.Expired):
        verbs.watch(kube.Selection("Namespace"), "1", 30)


@contextlib.contextmanager
def raw_http(then):
    """A server on 127.0.0.1 that reads one request, starts a chunked 200 answer, and
    leaves the rest to `then(conn)`: what the API server does, short of ending well."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        then(conn)

    threading.Thread(target=serve_one, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_a_watch_cut_off_mid_line_is_unavailable(tmp_path):
    def cut_off(conn):
        part = b'{"type": "ADDED", "obj'
        conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        conn.close()

    with raw_http(cut_off) as url:
        verbs = kube.connect({"KUBECONFIG": kubeconfig(tmp_path, url), "KUBE_TIMEOUT": 5.0})
        with pytest.raises(PlatformError) as err:
            list(verbs.watch(kube.Selection("Namespace"), "1", 30))
    assert err.value.kind is Kind.UPSTREAM_UNAVAILABLE


def test_closing_a_watch_wakes_its_reader(tmp_path):
    """The server keeps the watch open and silent; close() from another thread ends it."""
    held = threading.Event()
    with raw_http(lambda conn: held.wait(10)) as url:
        verbs = kube.connect({"KUBECONFIG": kubeconfig(tmp_path, url), "KUBE_TIMEOUT": 5.0})
        stream = verbs.watch(kube.Selection("Namespace"), "1", 300)
        ended = threading.Event()

        def read():
            with contextlib.suppress(PlatformError):
                list(stream)
            ended.set()

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.2)
        assert not ended.is_set()
        stream.close()
        assert ended.wait(5)
        held.set()
