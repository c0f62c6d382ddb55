"""From a pod to a local process, the way the kubelet would read the pod (pure functions).

Env resolution follows the kubelet: envFrom first, then env in order, `$(VAR)` expanded
against what is defined so far (`$$` escapes); a missing non-optional Secret or
ConfigMap is a CreateContainerConfigError. Volume mount paths are mapped to
directories of the pod on this host and rewritten in env values, command and args.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Kubelet limits for a termination message read from the logs (FallbackToLogsOnError).
MESSAGE_LOG_LINES = 80
MESSAGE_LOG_BYTES = 2048

Lookup = Callable[[str, str], Mapping[str, str] | None]  # (kind, name) -> data or None
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerConfigError(Exception):
    """The container cannot be configured yet (kubelet: CreateContainerConfigError)."""


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubelet `$(VAR)` expansion: defined names are replaced, `$$` becomes `$`."""
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)
    return _VAR.sub(sub, value)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: Mapping[str, Any], path: str) -> str:
    """The value of a downward-API fieldRef path (the paths the kubelet supports for env)."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return simple[path] or ""
    match = _SUBSCRIPT.match(path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise ContainerConfigError(f"unsupported fieldRef {path!r}")


def _source(lookup: Lookup, kind: str, name: str, optional: bool) -> Mapping[str, str]:
    data = lookup(kind, name)
    if data is None:
        if optional:
            return {}
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    return data


def _value_from(pod: Mapping[str, Any], source: Mapping[str, Any], lookup: Lookup) -> str | None:
    for kind, ref_key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
        ref = source.get(ref_key)
        if ref:
            optional = bool(ref.get("optional"))
            data = _source(lookup, kind, ref["name"], optional)
            if ref["key"] in data:
                return data[ref["key"]]
            if optional:
                return None
            namespace = pod["metadata"]["namespace"]
            raise ContainerConfigError(
                f'couldn\'t find key {ref["key"]} in {kind} {namespace}/{ref["name"]}')
    if source.get("fieldRef"):
        return field_ref(pod, source["fieldRef"]["fieldPath"])
    if source.get("resourceFieldRef"):
        return ""  # no cgroup limits here: the value is meaningless locally
    raise ContainerConfigError(f"unsupported valueFrom {sorted(source)}")


def resolve_env(pod: Mapping[str, Any], container: Mapping[str, Any],
                lookup: Lookup) -> dict[str, str]:
    """The container's environment (values as strings, in kubelet precedence)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, ref_key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            ref = source.get(ref_key)
            if ref:
                data = _source(lookup, kind, ref["name"], bool(ref.get("optional")))
                env.update({prefix + key: value for key, value in data.items()})
    for var in container.get("env") or []:
        if "valueFrom" in var:
            value = _value_from(pod, var["valueFrom"], lookup)
            if value is None:
                continue
            env[var["name"]] = value
        else:
            env[var["name"]] = expand(var.get("value", ""), env)
    return env


def mount_map(pod: Mapping[str, Any], container: Mapping[str, Any],
              volume_dir: Callable[[str], str]) -> dict[str, str]:
    """Container mountPath -> local directory, for the volumes the executor can provide
    (emptyDir, secret, configMap, projected); volume_dir(name) is where a volume lives
    locally."""
    supported = {v["name"] for v in pod.get("spec", {}).get("volumes") or []
                 if {"emptyDir", "secret", "configMap", "projected"} & set(v)}
    mounts = {}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] in supported:
            local = volume_dir(mount["name"])
            sub = mount.get("subPath")
            mounts[mount["mountPath"].rstrip("/") or "/"] = f"{local}/{sub}" if sub else local
    return mounts


def rewrite_paths(value: str, mounts: Mapping[str, str]) -> str:
    """Maps a container path under a mounted volume to its local directory.

    A path below a mount that exists on this machine is a host path the local run points
    at on purpose (the repository's chart, when the checkout lives under /tmp): kept.
    """
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path:
            return mounts[mount_path]
        if value.startswith(mount_path + "/"):
            if os.path.exists(value):
                return value
            return mounts[mount_path] + value[len(mount_path):]
    return value


def command_line(container: Mapping[str, Any], env: Mapping[str, str],
                 mounts: Mapping[str, str]) -> list[str]:
    """command + args, expanded and path-mapped; the image entrypoint is unknown here."""
    command = list(container.get("command") or [])
    if not command:
        raise ContainerConfigError("container has no command (an image entrypoint cannot run "
                                   "locally)")
    return [rewrite_paths(expand(arg, env), mounts)
            for arg in [*command, *(container.get("args") or [])]]


def process_env(container_env: Mapping[str, str], mounts: Mapping[str, str], *,
                path_prepend: Sequence[str], pythonpath: Sequence[str], hostname: str,
                home: str, kubeconfig: str) -> dict[str, str]:
    """The whole environment of the local process: a small base, then the container's."""
    env = {
        "PATH": ":".join([*path_prepend, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home,
        "HOSTNAME": hostname,
        "LANG": "C.UTF-8",
        "PYTHONPATH": ":".join(pythonpath),
        "KUBECONFIG": kubeconfig,
    }
    if "/tmp" in mounts:  # noqa: S108 (a container path, mapped to the pod's own directory)
        env["TMPDIR"] = mounts["/tmp"]  # noqa: S108
    env.update({k: rewrite_paths(v, mounts) for k, v in container_env.items()})
    env["KUBECONFIG"] = kubeconfig  # the pod's own credentials, whatever the spec says
    return env


def tail_message(output: bytes) -> str:
    """The last lines of the output, within the kubelet's limits for a log message."""
    lines = output.splitlines(keepends=True)[-MESSAGE_LOG_LINES:]
    return b"".join(lines)[-MESSAGE_LOG_BYTES:].decode(errors="replace")


def termination_message(container: Mapping[str, Any], exit_code: int, output: bytes) -> str:
    """FallbackToLogsOnError: the output tail when the container failed; File: nothing
    (no /dev/termination-log can be mounted for a local process)."""
    if container.get("terminationMessagePolicy") == "FallbackToLogsOnError" and exit_code != 0:
        return tail_message(output)
    return ""


def exit_code_of(returncode: int) -> int:
    """Shell convention for a process killed by a signal: 128 + signal number."""
    return 128 - returncode if returncode < 0 else returncode


def _conditions(now: str, ready: bool, reason: str | None = None) -> list[dict[str, Any]]:
    status = "True" if ready else "False"
    extra = {"reason": reason} if reason else {}
    return [
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": status, "lastTransitionTime": now, **extra},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now, **extra},
    ]


def _container_status(container: Mapping[str, Any], state: dict[str, Any], ready: bool,
                      restarts: int = 0) -> dict[str, Any]:
    return {"name": container["name"], "image": container.get("image", ""),
            "imageID": "", "containerID": "", "ready": ready, "started": "running" in state,
            "restartCount": restarts, "state": state}


def waiting_status(container: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    return {"containerStatuses": [_container_status(
        container, {"waiting": {"reason": reason, "message": message}}, False)]}


def running_status(container: Mapping[str, Any], now: str, host_ip: str,
                   restarts: int = 0) -> dict[str, Any]:
    return {
        "phase": "Running",
        "startTime": now,
        "hostIP": host_ip,
        "conditions": _conditions(now, True),
        "containerStatuses": [_container_status(container, {"running": {"startedAt": now}},
                                                True, restarts)],
    }


def terminated_status(container: Mapping[str, Any], exit_code: int, message: str,
                      started: str, finished: str, restarts: int = 0) -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                  "startedAt": started, "finishedAt": finished}
    if message:
        terminated["message"] = message
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": _conditions(finished, False, "PodCompleted"),
        "containerStatuses": [_container_status(container, {"terminated": terminated}, False,
                                                restarts)],
    }
