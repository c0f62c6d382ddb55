"""The runner's reset-admin-password action (wpcli.py): wp-cli's call, the Job made from the
chart's own set-up hook, the one-time Secret, and where the password never goes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from storeplatform import contract, wpcli
from tests.conftest import unavailable
from tests.unit.fakekube import FakeKube

ROOT = Path(__file__).resolve().parents[2]
STORE = "store-a"


def hooks_yaml() -> str:
    """`helm get hooks` of a real release is the rendered hooks: render the chart's."""
    import storechart

    helm = storechart.find_helm()
    if helm is None:
        unavailable("helm not found: run `hack/controlplane/build.sh helm-kubectl`")
    result = storechart.render(helm, "local")
    assert result.returncode == 0, result.stderr
    hooks = [d for d in storechart.documents(result.stdout)
             if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    return yaml.safe_dump_all(hooks)


@pytest.fixture(scope="module")
def hook() -> dict:
    return wpcli.setup_hook(hooks_yaml())


def test_the_set_up_hook_is_found_among_the_hooks(hook):
    assert hook["kind"] == "Job"
    assert "post-install" in hook["metadata"]["annotations"]["helm.sh/hook"]


def test_no_set_up_hook_is_a_reason():
    with pytest.raises(wpcli.ResetError, match="no post-install set-up Job"):
        wpcli.setup_hook("kind: Pod\nmetadata: {annotations: {helm.sh/hook: test}}\n")


def test_the_reset_job_runs_wp_user_update_in_the_set_up_pod(hook):
    job = wpcli.reset_job(STORE, hook)
    spec = job["spec"]["template"]["spec"]
    box = spec["containers"][0]
    assert box["image"] == hook["spec"]["template"]["spec"]["containers"][0]["image"]
    script = box["command"][-1]
    assert "wp --no-color user update" in script and "--prompt=user_pass --skip-email" in script
    assert f"< {wpcli.SECRET_MOUNT}/password" in script  # stdin, not an argument
    # The chart's WordPress core copy, database settings and security stay as they are.
    assert spec["initContainers"] == hook["spec"]["template"]["spec"]["initContainers"]
    assert box["env"] == hook["spec"]["template"]["spec"]["containers"][0]["env"]
    assert box["securityContext"] == hook["spec"]["template"]["spec"]["containers"][0][
        "securityContext"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "scripts" not in volumes
    assert volumes["admin-password"]["secret"]["secretName"] == contract.ADMIN_PASSWORD_SECRET
    assert (job["metadata"]["namespace"], job["spec"]["backoffLimit"]) == (STORE, 0)
    assert job["metadata"]["labels"][contract.LABEL_STORE] == STORE
    assert "helm.sh/hook" not in json.dumps(job)


class RecordingCli:
    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    def set_password(self, store: str, user: str, password: str) -> None:
        self.calls.append((store, user, password))
        if self.fail:
            raise wpcli.ResetError(self.fail)


@pytest.fixture
def kube() -> FakeKube:
    kube = FakeKube()
    kube.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STORE}})
    kube.add({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": contract.CREDENTIALS_SECRET, "namespace": STORE},
        "data": {"admin-user": "YWRtaW4="}})  # admin
    return kube


def reset_record(kube: FakeKube) -> dict:
    return json.loads(kube.get("Namespace", STORE)["metadata"]["annotations"][
        contract.ANNOTATION_ADMIN_RESET])


def test_a_reset_leaves_the_new_password_applied_in_the_one_time_secret(kube):
    cli = RecordingCli()
    wpcli.reset_admin_password({"STORE_NAME": STORE, "RESET_ID": "ev-1"}, kube, cli)
    ((store, user, password),) = cli.calls
    assert (store, user) == (STORE, "admin") and len(password) == 24
    secret = kube.get("Secret", contract.ADMIN_PASSWORD_SECRET, STORE)
    assert secret["stringData"] == {"user": "admin", "password": password}
    notes = secret["metadata"]["annotations"]
    assert notes[contract.ANNOTATION_PHASE] == "applied"
    assert notes[contract.ANNOTATION_RESET_ID] == "ev-1"
    assert notes[contract.ANNOTATION_EXPIRES_AT].endswith("Z")
    record = reset_record(kube)
    assert (record["id"], record["state"]) == ("ev-1", "applied")
    assert password not in json.dumps(kube.get("Namespace", STORE))


def test_two_resets_never_share_a_password(kube):
    cli = RecordingCli()
    for reset_id in ("ev-1", "ev-2"):
        wpcli.reset_admin_password({"STORE_NAME": STORE, "RESET_ID": reset_id}, kube, cli)
    assert cli.calls[0][2] != cli.calls[1][2]


def test_a_failed_wp_cli_leaves_no_password_and_records_why(kube):
    cli = RecordingCli(fail="wp user update failed: Invalid user ID, email or login")
    with pytest.raises(wpcli.ResetError, match="Invalid user"):
        wpcli.reset_admin_password({"STORE_NAME": STORE, "RESET_ID": "ev-1"}, kube, cli)
    assert ("Secret", STORE, contract.ADMIN_PASSWORD_SECRET) not in kube.objects
    record = reset_record(kube)
    assert (record["state"], record["reason"]) == (
        "failed", "wp user update failed: Invalid user ID, email or login")


def test_a_local_wp_cli_gets_the_password_on_stdin_never_in_its_arguments(tmp_path):
    fake = tmp_path / "wp"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat > {tmp_path}/stdin\n')
    fake.chmod(0o755)
    wpcli.LocalCli(str(fake)).set_password(STORE, "admin", "pw-on-stdin")
    assert (tmp_path / "args").read_text().split() == [
        "user", "update", "admin", "--prompt=user_pass", "--skip-email"]
    assert (tmp_path / "stdin").read_text() == "pw-on-stdin\n"


def test_a_failing_local_wp_cli_says_why(tmp_path):
    fake = tmp_path / "wp"
    fake.write_text("#!/bin/sh\necho 'Error: Invalid user.' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(wpcli.ResetError, match="Invalid user"):
        wpcli.LocalCli(str(fake)).set_password(STORE, "admin", "x")


@pytest.mark.parametrize("setting", ["", "wp", "relative/wp", "/nonexistent/wp"])
def test_wp_cli_is_job_or_an_absolute_executable(setting):
    with pytest.raises(wpcli.ResetError, match="WP_CLI must be"):
        wpcli.choose_cli(setting, FakeKube(), lambda args: None)


def test_the_dev_stand_in_refuses_anything_but_the_call_the_runner_makes(tmp_path):
    standin = ROOT / "hack" / "devstack" / "wp-cli-standin"
    # As the job executor runs it: the venv's python first on PATH.
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "PYTHONPATH": str(ROOT / "functions")}
    for argv in (["user", "update", "admin", "--user_pass=x"], ["core", "install"]):
        result = subprocess.run([str(standin), *argv], input="x\n", capture_output=True,
                                text=True, env=env, timeout=30, check=False)
        assert result.returncode == 1 and result.stderr.startswith("Error: "), result
