"""The runner as its pod runs it: a real process that gets SIGTERM (and only it, as PID 1
of a container does), with a stand-in `helm` executable on PATH and the Kubernetes API a
real HTTP server on 127.0.0.1 that records the namespace marks.

The runner must pass SIGTERM to helm, record the interruption and exit within the grace
period; a helm that ignores SIGTERM is killed after HELM_STOP_SECONDS.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from werkzeug.wrappers import Response

from storeplatform import budget, logs
from tests.helpers import Recorder, serve
from tests.unit.test_kube import kubeconfig

ROOT = Path(__file__).resolve().parents[2]

FAKE_HELM = textwrap.dedent("""\
    #!{python}
    import os, signal, sys, time
    from pathlib import Path
    out = Path({out!r})
    command = sys.argv[1]
    if command == "history":
        print("[]")
        sys.exit(0)
    if command != "upgrade":
        sys.exit(0)
    def stop(signum, frame):
        (out / "helm-signal").write_text(signal.Signals(signum).name)
        if {obey}:
            print("Release store-a has been cancelled.")
            sys.exit(1)
    signal.signal(signal.SIGTERM, stop)
    (out / "helm-pid").write_text(str(os.getpid()))
    time.sleep(120)
""")


@pytest.fixture
def api(tmp_path):
    """The Kubernetes API as the runner sees it: answers {} and records every request."""
    recorder = Recorder(lambda _req: Response("{}", content_type="application/json"))
    with serve(recorder) as url:
        yield kubeconfig(tmp_path, url), recorder


def start_runner(tmp_path, kubeconfig_path, obey=True) -> subprocess.Popen:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable, out=str(tmp_path), obey=obey))
    helm.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT / "functions"), "KUBECONFIG": kubeconfig_path,
           "STORE_NAME": "store-a", "STORE_CHART": str(tmp_path), "HELM_TIMEOUT": "5m",
           "STORE_VALUES": "{}", "HOME": str(tmp_path)}
    return subprocess.Popen([sys.executable, "-m", "storeplatform.runner", "install"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def namespace_patches(recorder) -> list:
    return [json.loads(r["body"]) for r in recorder.requests
            if r["method"] == "PATCH" and r["path"] == "/api/v1/namespaces/store-a"]


def terminate_mid_upgrade(proc: subprocess.Popen, tmp_path: Path) -> tuple[int, float, int, str]:
    """SIGTERM to the runner only (as the kubelet signals PID 1) once helm upgrade runs:
    (exit code, seconds it took to exit, helm's pid, the runner's stderr)."""
    try:
        helm_pid = int(wait_for(tmp_path / "helm-pid"))
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=budget.TERMINATION_GRACE_SECONDS)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    return code, took, helm_pid, err


def test_sigterm_reaches_helm_is_recorded_and_the_runner_exits_in_its_grace(tmp_path, api):
    kubeconfig_path, recorder = api
    code, took, helm_pid, err = terminate_mid_upgrade(start_runner(tmp_path, kubeconfig_path),
                                                      tmp_path)
    assert code == 1
    assert took < budget.TERMINATION_GRACE_SECONDS
    assert wait_for(tmp_path / "helm-signal") == "SIGTERM"  # passed on to the child
    with pytest.raises(ProcessLookupError):
        os.kill(helm_pid, 0)  # and helm is gone
    last = logs.message_of(err.strip().splitlines()[-1])  # the runner logs JSON lines
    assert last.startswith("interrupted by SIGTERM during helm upgrade")
    patches = namespace_patches(recorder)
    start = patches[0]  # then the timeline's stamps, then the outcome (a JSON patch)
    (interrupted,) = [p for p in patches if isinstance(p, list)]
    assert start["metadata"]["annotations"]["storeplatform.io/phase"] == "provisioning"
    # Recorded only over its own start mark: a delete's `deleting` would stay.
    assert interrupted[0] == {"op": "test", "path": "/metadata/annotations/storeplatform.io~1phase",
                              "value": "provisioning"}
    assert {"op": "add", "path": "/metadata/annotations/storeplatform.io~1reason",
            "value": last} in interrupted


def test_a_helm_that_ignores_sigterm_is_killed_after_its_stop_time(tmp_path, api):
    kubeconfig_path, _ = api
    code, took, helm_pid, err = terminate_mid_upgrade(
        start_runner(tmp_path, kubeconfig_path, obey=False), tmp_path)
    assert code == 1
    assert budget.HELM_STOP_SECONDS <= took < budget.TERMINATION_GRACE_SECONDS
    assert wait_for(tmp_path / "helm-signal") == "SIGTERM"
    with pytest.raises(ProcessLookupError):
        os.kill(helm_pid, 0)
    assert logs.message_of(err.strip().splitlines()[-1]).startswith("interrupted by SIGTERM")


def test_a_helm_killed_outright_fails_the_run_saying_so(tmp_path, api):
    """What the OOM killer does to helm: SIGKILL, no chance to clean up."""
    kubeconfig_path, recorder = api
    proc = start_runner(tmp_path, kubeconfig_path)
    try:
        os.kill(int(wait_for(tmp_path / "helm-pid")), signal.SIGKILL)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert code == 1
    reason = ("helm upgrade --install was killed by SIGKILL (out of memory?); the next run "
              "repairs the release")
    assert logs.message_of(err.strip().splitlines()[-1]) == reason
    (outcome,) = [p for p in namespace_patches(recorder) if isinstance(p, list)]
    assert {"op": "add", "path": "/metadata/annotations/storeplatform.io~1phase",
            "value": "failed"} in outcome
