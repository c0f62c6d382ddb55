"""The runner's `reset-admin-password` action: a new random admin password, set with wp-cli,
left for list-stores to hand over once (storeplatform.lifecycle.owner_access).

1. record on the namespace that reset <id> runs (list-stores answers "pending");
2. a random password into the one-time Secret `storeplatform-admin-password` in the store's
   namespace (any earlier one is replaced), with the admin's login from store-credentials;
3. wp-cli sets it: `wp user update <login> --prompt=user_pass --skip-email`, the password on
   standard input, never on a command line, in the environment, a log or an event;
4. the Secret is marked applied with an expiry; the namespace record says applied.
On failure the Secret is deleted and the record says failed, with the reason.

Where wp-cli runs (setting WP_CLI):
- `job`: a Job in the store's namespace, made from the chart's own set-up hook as Helm
  recorded it (`helm get hooks`): the same wp-cli image, WordPress core, database settings,
  volumes and security context, with the one-time Secret mounted instead of the set-up script.
- an absolute path: that executable, run here with the same arguments and standard input.
  `make dev` points it at hack/devstack/wp-cli-standin, a stand-in for wp-cli (no PHP or
  WordPress runs here) that checks the call and keeps a hash of the password for the tests.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import yaml

from storeplatform import contract, timeline
from storeplatform.errors import PlatformError
from storeplatform.kube import Kube, Obj
from storeplatform.status import job_state, one_line

log = logging.getLogger("storeplatform.runner")

PASSWORD_BYTES = 18  # 24 URL-safe characters, 144 bits
SECRET_MOUNT = "/run/secrets/admin-password"  # noqa: S105 (a path)
WP_ARGS = ("--prompt=user_pass", "--skip-email")
JOB_DEADLINE_SECONDS = 300
POLL_SECONDS = 2.0
COMPONENT = "admin-password"

Helm = Callable[[Sequence[str]], subprocess.CompletedProcess]


class ResetError(RuntimeError):
    """The reset failed; the message is the one-line reason."""


def wp_user_update(user: str) -> list[str]:
    """wp-cli's arguments: the password comes from standard input (--prompt)."""
    return ["user", "update", user, *WP_ARGS]


class WpCli(Protocol):
    def set_password(self, store: str, user: str, password: str) -> None: ...


class LocalCli:
    """wp-cli (or its stand-in) as a local executable."""

    def __init__(self, path: str) -> None:
        self.path = path

    def set_password(self, store: str, user: str, password: str) -> None:
        result = subprocess.run([self.path, *wp_user_update(user)], input=password + "\n",
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise ResetError(f"wp user update failed: {one_line(result.stderr or result.stdout)}")


def setup_hook(hooks_yaml: str) -> Obj:
    """The chart's set-up Job (a post-install hook) from `helm get hooks` output."""
    for doc in yaml.safe_load_all(hooks_yaml):
        if not isinstance(doc, dict) or doc.get("kind") != "Job":
            continue
        events = (doc.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook", "")
        if "post-install" in events.split(","):
            return doc
    raise ResetError("the store's release has no post-install set-up Job to run wp-cli from")


def reset_job(store: str, hook: Mapping[str, Any]) -> Obj:
    """A Job running `wp user update` in the set-up hook's pod, the one-time Secret mounted."""
    template = copy.deepcopy(hook["spec"]["template"])
    spec = template["spec"]
    box = spec["containers"][0]
    user_file, password_file = f"{SECRET_MOUNT}/user", f"{SECRET_MOUNT}/password"
    box["command"] = ["/bin/sh", "-ec",
                      f'exec wp --no-color user update "$(cat {user_file})" '
                      f'{" ".join(WP_ARGS)} < {password_file}']
    box.pop("args", None)
    box["volumeMounts"] = [m for m in box.get("volumeMounts") or [] if m["name"] != "scripts"]
    box["volumeMounts"].append({"name": COMPONENT, "mountPath": SECRET_MOUNT, "readOnly": True})
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v["name"] != "scripts"]
    spec["volumes"].append({"name": COMPONENT, "secret": {
        "secretName": contract.ADMIN_PASSWORD_SECRET, "defaultMode": 0o440,
        "items": [{"key": "user", "path": "user"}, {"key": "password", "path": "password"}]}})
    spec["restartPolicy"] = "Never"
    labels = {**(template.get("metadata", {}).get("labels") or {}),
              **contract.store_labels(store), contract.LABEL_COMPONENT: COMPONENT}
    template["metadata"] = {"labels": labels}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{store}-{COMPONENT}", "namespace": store, "labels": labels},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": JOB_DEADLINE_SECONDS,
                 "ttlSecondsAfterFinished": 600, "template": template},
    }


class JobCli:
    """wp-cli in a Job of the store's namespace, built from the chart's set-up hook."""

    def __init__(self, kube: Kube, helm: Helm, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.helm, self.sleep, self.clock = kube, helm, sleep, clock

    def set_password(self, store: str, user: str, password: str) -> None:
        hooks = self.helm(["get", "hooks", store, "--namespace", store])
        if hooks.returncode != 0:
            raise ResetError(f"helm get hooks failed: {one_line(hooks.stderr or hooks.stdout)}")
        job = reset_job(store, setup_hook(hooks.stdout))
        name = job["metadata"]["name"]
        self.kube.delete_if_present("Job", name, store)
        deadline = self.clock() + JOB_DEADLINE_SECONDS + 60
        while self.kube.create_or_keep(job) is None:  # the last reset's Job is still going
            if self.clock() > deadline:
                raise ResetError(f"job {store}/{name} of an earlier reset does not go away")
            self.sleep(POLL_SECONDS)
        log.info("started job %s/%s (wp user update)", store, name)
        while True:
            current = self.kube.read_or_none("Job", name, store)
            state = job_state(current) if current is not None else "failed"
            if state == "succeeded":
                self.kube.delete_if_present("Job", name, store)
                return
            if state == "failed" or self.clock() > deadline:
                raise ResetError(f"wp user update failed in job {store}/{name}: "
                                 f"{_job_failure(current)}; see `kubectl -n {store} logs "
                                 f"job/{name}`")
            self.sleep(POLL_SECONDS)


def _job_failure(job: Mapping[str, Any] | None) -> str:
    if job is None:
        return "the job disappeared"
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return one_line(cond.get("message") or cond.get("reason") or "failed")
    return "it did not finish in time"


def choose_cli(setting: str, kube: Kube, helm: Helm) -> WpCli:
    """The WP_CLI setting: "job", or the absolute path of an executable."""
    if setting == "job":
        return JobCli(kube, helm)
    if os.path.isabs(setting) and os.access(setting, os.X_OK):
        return LocalCli(setting)
    raise ResetError(f"WP_CLI must be 'job' or the absolute path of an executable, got "
                     f"{setting!r}")


def one_time_secret(store: str, reset_id: str, user: str, password: str) -> Obj:
    """The Secret that carries the new password until it is shown (or expires)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": contract.ADMIN_PASSWORD_SECRET, "namespace": store,
                     "labels": contract.store_labels(store),
                     "annotations": {contract.ANNOTATION_RESET_ID: reset_id,
                                     contract.ANNOTATION_PHASE: "setting"}},
        "stringData": {"user": user, "password": password},
    }


def record(kube: Kube, store: str, reset_id: str, state: str, reason: str | None = None,
           now: datetime | None = None) -> None:
    """The reset's state on the namespace, where list-stores reads it (no password)."""
    entry = {"id": reset_id, "state": state, "at": timeline.now_text(now)}
    if reason:
        entry["reason"] = reason
    kube.patch("Namespace", store, {"metadata": {"annotations": {
        contract.ANNOTATION_ADMIN_RESET: json.dumps(entry, separators=(",", ":"))}}})


def admin_user(kube: Kube, store: str) -> str:
    """The admin's login, from the store's credentials (the runner may read them)."""
    secret = kube.read_or_none("Secret", contract.CREDENTIALS_SECRET, store)
    encoded = ((secret or {}).get("data") or {}).get("admin-user")
    if not encoded:
        raise ResetError(f"secret {store}/{contract.CREDENTIALS_SECRET} has no admin-user")
    return base64.b64decode(encoded).decode()


def reset_admin_password(env: Mapping[str, str], kube: Kube, cli: WpCli,
                         now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Steps 1-4 of the module docstring; ResetError (after recording it) on failure."""
    store, reset_id = env["STORE_NAME"], env["RESET_ID"]
    record(kube, store, reset_id, "running", now=now())
    name = contract.ADMIN_PASSWORD_SECRET
    try:
        user = admin_user(kube, store)
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        kube.create_or_replace(one_time_secret(store, reset_id, user, password))
        cli.set_password(store, user, password)
        expires = now() + timedelta(seconds=contract.ADMIN_PASSWORD_TTL_SECONDS)
        kube.patch("Secret", name, {"metadata": {"annotations": {
            contract.ANNOTATION_PHASE: "applied",
            contract.ANNOTATION_EXPIRES_AT: timeline.now_text(expires)}}}, store)
    except (ResetError, PlatformError, subprocess.TimeoutExpired, OSError) as err:
        reason = one_line(err.message if isinstance(err, PlatformError) else str(err))
        try:
            kube.delete_if_present("Secret", name, store)
        finally:
            record(kube, store, reset_id, "failed", reason, now=now())
        raise ResetError(reason) from err
    record(kube, store, reset_id, "applied", now=now())
    log.info("admin password of %s reset (reset %s)", store, reset_id)
