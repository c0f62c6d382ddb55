"""The job executor: the kubelet of Helm runner pods.

KWOK only pretends to run pods. Pods labelled app.kubernetes.io/component=helm-runner are
skipped by KWOK's stages and run here instead, for real, as local processes: the
container's command/args/env are resolved as the kubelet would (Secret and ConfigMap
references, downward API), the process gets a kubeconfig holding only a token of the
pod's own ServiceAccount (TokenRequest, bound to the pod), and the pod status
(Running, then Succeeded/Failed with exit code and termination message) is written back
so the Job controller sees the true outcome.

Deleting the pod stops it as a kubelet does: SIGTERM to the process group, the pod's grace
period (at most MAX_KILL_GRACE), SIGKILL, then the final status, and only then the pod
object is deleted (grace 0). Until then the pod exists, so its bound ServiceAccount token
stays valid while the process records why it stopped, and the Job controller counts the
pod as failed rather than losing it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from localkube import podspec, procs
from localkube.kubeconfig import token_kubeconfig, write_private
from localkube.options import RUNNER_LABEL_KEY, RUNNER_LABEL_VALUE, ExecutorOptions

log = logging.getLogger("localkube.executor")

SELECTOR = f"{RUNNER_LABEL_KEY}={RUNNER_LABEL_VALUE}"
API_TIMEOUT = 10
WATCH_SECONDS = 30
RETRY_SECONDS = 2.0
MAX_KILL_GRACE = 30
OUTPUT_TAIL_READ = 64 * 1024
DEFAULT_TOKEN_SECONDS = 3607  # what the kubelet asks for


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_key(pod: Mapping[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def token_projection(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The serviceAccountToken projection the ServiceAccount admission plugin added, the one
    for the API server itself (no audience); None: automountServiceAccountToken is off, the
    pod gets no credentials."""
    for volume in pod.get("spec", {}).get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token and not token.get("audience"):
                return token
    return None


def _read_tail(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - OUTPUT_TAIL_READ))
            return f.read()
    except OSError:
        return b""


class PodWorker(threading.Thread):
    """Runs one pod's container to completion (or until the pod is deleted)."""

    def __init__(self, executor: Executor, pod: dict[str, Any]) -> None:
        super().__init__(name=f"pod-{pod['metadata']['name']}", daemon=True)
        self.executor = executor
        self.pod = pod
        self.key = pod_key(pod)
        meta = pod["metadata"]
        self.dir = executor.pods_dir / meta["namespace"] / f"{meta['name']}-{meta['uid'][:8]}"
        self.deleted = threading.Event()
        self.shutting_down = False  # the executor stops: no pod was deleted
        self.process: subprocess.Popen | None = None

    # --- API helpers -------------------------------------------------------------------
    def _patch_status(self, status: dict[str, Any]) -> None:
        meta = self.pod["metadata"]
        try:
            self.executor.core.patch_namespaced_pod_status(
                meta["name"], meta["namespace"], {"status": status}, _request_timeout=API_TIMEOUT)
        except ApiException as err:
            if err.status != 404:
                raise

    def _finish_deletion(self, status: dict[str, Any]) -> None:
        """The kubelet's last steps for a deleted pod: its final status, then the delete
        with grace 0 (the Job controller removes its own finalizer once it counted it)."""
        meta = self.pod["metadata"]
        with contextlib.suppress(ApiException):
            self._patch_status(status)
        try:
            self.executor.core.delete_namespaced_pod(
                meta["name"], meta["namespace"], grace_period_seconds=0,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                _request_timeout=API_TIMEOUT)
        except ApiException as err:
            if err.status not in (404, 409):
                log.warning("pod %s: final delete failed: %s", self.key, err.reason)

    def _lookup(self, kind: str, name: str) -> dict[str, str] | None:
        core, namespace = self.executor.core, self.pod["metadata"]["namespace"]
        try:
            if kind == "Secret":
                secret = core.read_namespaced_secret(name, namespace, _request_timeout=API_TIMEOUT)
                return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
            config_map = core.read_namespaced_config_map(name, namespace,
                                                         _request_timeout=API_TIMEOUT)
            return dict(config_map.data or {})
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def _token(self, projection: Mapping[str, Any] | None = None) -> str:
        """A token of the pod's ServiceAccount bound to this pod, as the kubelet mounts it
        (for the API server, or for the projection's audience)."""
        projection = projection or token_projection(self.pod)
        if projection is None:
            return ""
        meta, spec = self.pod["metadata"], self.pod["spec"]
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [projection["audience"]] if projection.get("audience") else [],
                "expirationSeconds": projection.get("expirationSeconds", DEFAULT_TOKEN_SECONDS),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                   "uid": meta["uid"]},
            },
        }
        response = self.executor.core.create_namespaced_service_account_token(
            spec.get("serviceAccountName") or "default", meta["namespace"], body,
            _request_timeout=API_TIMEOUT)
        return response.status.token

    # --- local files ---------------------------------------------------------------------
    def _volume_dir(self, name: str) -> str:
        return str(self.dir / "volumes" / name)

    def _materialize_volumes(self) -> None:
        """emptyDir: a directory; secret/configMap: their keys as files (mode 0600);
        projected: its serviceAccountToken (TokenRequest, bound to the pod) and secret /
        configMap sources as files. The API server's own kube-api-access projection is
        not written: the process gets that token in its kubeconfig."""
        for volume in self.pod["spec"].get("volumes") or []:
            target = Path(self._volume_dir(volume["name"]))
            if "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
                continue
            if "projected" in volume and token_projection({"spec": {"volumes": [volume]}}):
                continue
            for source in (volume.get("projected") or {}).get("sources") or []:
                target.mkdir(parents=True, exist_ok=True)
                if source.get("serviceAccountToken"):
                    path = target / source["serviceAccountToken"]["path"]
                    path.write_text(self._token(source["serviceAccountToken"]))
                    path.chmod(0o600)
                for kind, field in (("Secret", "secret"), ("ConfigMap", "configMap")):
                    if source.get(field):
                        self._write_items(kind, source[field], source[field]["name"], target)
            for kind, field, name_key in (("Secret", "secret", "secretName"),
                                          ("ConfigMap", "configMap", "name")):
                source = volume.get(field)
                if source is not None:
                    self._write_items(kind, source, source[name_key], target)

    def _write_items(self, kind: str, source: Mapping[str, Any], name: str,
                     target: Path) -> None:
        data = self._lookup(kind, name)
        if data is None and not source.get("optional"):
            raise podspec.ContainerConfigError(f'{kind.lower()} "{name}" not found')
        target.mkdir(parents=True, exist_ok=True)
        items = source.get("items") or [{"key": k, "path": k} for k in (data or {})]
        for item in items:
            if data and item["key"] in data:
                path = target / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(data[item["key"]])
                path.chmod(0o600)

    # --- lifecycle -----------------------------------------------------------------------
    def _prepare(self, container: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        """argv and env of the process; ContainerConfigError while something is missing."""
        options: ExecutorOptions = self.executor.options
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self._materialize_volumes()
        mounts = podspec.mount_map(self.pod, container, self._volume_dir)
        container_env = podspec.resolve_env(self.pod, container, self._lookup)
        argv = podspec.command_line(container, container_env, mounts)
        kubeconfig = write_private(self.dir / "kubeconfig", token_kubeconfig(
            self.executor.server, self.executor.ca_pem,
            self.pod["spec"].get("serviceAccountName") or "default", self._token()))
        env = podspec.process_env(
            container_env, mounts, path_prepend=options.path_prepend,
            pythonpath=options.pythonpath, hostname=self.pod["metadata"]["name"],
            home=str(self.dir), kubeconfig=str(kubeconfig))
        return argv, env

    def _prepare_until_ready(self, container: dict[str, Any],
                             ) -> tuple[list[str], dict[str, str]] | None:
        reported = ""
        while not self.deleted.is_set():
            try:
                return self._prepare(container)
            except (podspec.ContainerConfigError, ApiException) as err:
                message = str(err) if isinstance(err, podspec.ContainerConfigError) else (
                    f"API error {err.status} {err.reason}")
                if message != reported:
                    log.warning("pod %s: %s (retrying)", self.key, message)
                    self._patch_status(podspec.waiting_status(
                        container, "CreateContainerConfigError", message))
                    reported = message
            self.deleted.wait(RETRY_SECONDS)
        return None

    def _kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        grace = min(self.pod["spec"].get("terminationGracePeriodSeconds", 30), MAX_KILL_GRACE)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def _run_once(self, argv: list[str], env: dict[str, str]) -> int:
        """Runs the process; its exit code (when the pod was deleted meanwhile, the exit code
        it had once stopped; self.deleted is then set)."""
        log_path = self.dir / "container.log"
        with log_path.open("ab") as out:
            try:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=env, cwd=self.executor.options.workdir, start_new_session=True)
            except OSError as err:
                out.write(f"localkube executor: cannot start {argv[0]}: {err}\n".encode())
                return 128
        pid_file = self.dir / "process.pid"
        procs.write_pid(pid_file, self.process.pid)
        try:
            while self.process.poll() is None:
                if self.deleted.wait(0.5):
                    log.info("pod %s deleted: stopping its process (SIGTERM, then its grace "
                             "period)", self.key)
                    self._kill()
                    break
            return podspec.exit_code_of(self.process.returncode)
        finally:
            if self.process.poll() is None:
                self._kill()
            pid_file.unlink(missing_ok=True)

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s: executor failure", self.key)

    def _run(self) -> None:
        spec = self.pod["spec"]
        container = spec["containers"][0]
        unsupported = ("init containers are not supported" if spec.get("initContainers") else
                       "exactly one container is supported" if len(spec["containers"]) != 1
                       else "")
        if unsupported:
            self._patch_status(podspec.terminated_status(
                container, 128, f"localkube executor: {unsupported}", now(), now()))
            return
        prepared = self._prepare_until_ready(container)
        if prepared is None:
            return
        argv, env = prepared
        restarts = 0
        while True:
            started = now()
            host_ip = (self.pod.get("status") or {}).get("hostIP", "")
            self._patch_status(podspec.running_status(container, started, host_ip, restarts))
            log.info("pod %s: running %s", self.key, argv[0])
            exit_code = self._run_once(argv, env)
            message = podspec.termination_message(container, exit_code,
                                                  _read_tail(self.dir / "container.log"))
            log.info("pod %s: exited %d", self.key, exit_code)
            if self.deleted.is_set():
                if not self.shutting_down:
                    self._finish_deletion(podspec.terminated_status(
                        container, exit_code, message, started, now(), restarts))
                return
            if exit_code != 0 and spec.get("restartPolicy") == "OnFailure":
                # The kubelet restarts the container in place; the Job counts the restarts.
                restarts += 1
                status = podspec.terminated_status(container, exit_code, message, started,
                                                   now(), restarts)
                status["phase"] = "Running"
                self._patch_status(status)
                if self.deleted.wait(min(10 * 2 ** (restarts - 1), 300)):
                    return
                continue
            self._patch_status(podspec.terminated_status(container, exit_code, message, started,
                                                         now(), restarts))
            return


class Executor:
    """Watches runner pods bound to a node and runs each once, in its own PodWorker."""

    def __init__(self, api: client.ApiClient, options: ExecutorOptions, pods_dir: Path,
                 server: str, ca_pem: bytes) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.options = options
        self.pods_dir = pods_dir
        self.server = server
        self.ca_pem = ca_pem
        self._workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()

    def _as_dict(self, pod: Any) -> dict[str, Any]:
        return self.api.sanitize_for_serialization(pod)

    def _mark_lost(self, pod: dict[str, Any]) -> None:
        """A pod Running without a process here: the executor restarted under it."""
        container = pod["spec"]["containers"][0]
        meta = pod["metadata"]
        log.warning("pod %s was running when the executor restarted: marking it failed",
                    pod_key(pod))
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {
                "status": podspec.terminated_status(
                    container, 137, "localkube executor restarted while the pod ran", now(),
                    now())}, _request_timeout=API_TIMEOUT)

    def observe(self, pod: dict[str, Any]) -> None:
        """Reacts to the current state of one runner pod."""
        meta, spec = pod["metadata"], pod.get("spec", {})
        uid = meta["uid"]
        with self._lock:
            worker = self._workers.get(uid)
            if meta.get("deletionTimestamp"):
                if worker:
                    worker.deleted.set()
                return
            if worker or not spec.get("nodeName"):
                return
            phase = (pod.get("status") or {}).get("phase", "Pending")
            if phase in ("Succeeded", "Failed"):
                return
            if phase == "Running":
                self._mark_lost(pod)
                return
            worker = PodWorker(self, pod)
            self._workers[uid] = worker
        worker.start()

    def forget(self, uid: str) -> None:
        with self._lock:
            worker = self._workers.pop(uid, None)
        if worker:
            worker.deleted.set()

    def _resync(self) -> str:
        pods = self.core.list_pod_for_all_namespaces(label_selector=SELECTOR,
                                                     _request_timeout=API_TIMEOUT)
        present = set()
        for pod in pods.items:
            data = self._as_dict(pod)
            present.add(data["metadata"]["uid"])
            self.observe(data)
        with self._lock:
            gone = [uid for uid in self._workers if uid not in present]
        for uid in gone:
            self.forget(uid)
        return pods.metadata.resource_version

    def _watch(self, resource_version: str, stop: threading.Event) -> None:
        stream = watch.Watch()
        for event in stream.stream(self.core.list_pod_for_all_namespaces, label_selector=SELECTOR,
                                   resource_version=resource_version,
                                   timeout_seconds=WATCH_SECONDS,
                                   _request_timeout=WATCH_SECONDS + API_TIMEOUT):
            if stop.is_set():
                stream.stop()
                return
            pod = self._as_dict(event["object"])
            if event["type"] == "DELETED":
                self.forget(pod["metadata"]["uid"])
            else:
                self.observe(pod)

    def run(self, stop: threading.Event) -> None:
        """List, then watch, until stop is set; relists after every watch ends or fails."""
        log.info("executor watching pods with %s", SELECTOR)
        while not stop.is_set():
            try:
                self._watch(self._resync(), stop)
            except Exception as err:  # the API may be restarting; never give up
                log.warning("executor watch failed (%s); retrying", err)
                stop.wait(RETRY_SECONDS)

    def shutdown(self) -> None:
        """Kills every running process (the agents are stopping)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.shutting_down = True
            worker.deleted.set()
        for worker in workers:
            worker.join(timeout=MAX_KILL_GRACE + 5)
