"""An in-memory stand-in for storeplatform.kube.Kube: the same verbs with the same promises.

It fakes the verbs only, not the Kubernetes API: create keeps what stands (None), read of
a missing object is None, delete of a missing one (or of another uid or resourceVersion) is a
no-op, an object with finalizers is only marked for deletion, patch merges (None removes a
key), every write gives the object a new resourceVersion and a replace carrying another version
than the stored one is refused (RETRY_LATER kubernetes_conflict, as Kube makes of a 409).

list_versioned and watch serve the watch cache: a watch reports what changed in `objects`
since the version it started from (it looks every few milliseconds); expire_watches() and
break_watches() make the faults a real API server gives (410 Gone, a dropped connection).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import Expired, Selection

Key = tuple[str, str | None, str]


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _json_patch(target: dict[str, Any], operations: list[Mapping[str, Any]]) -> None:
    """RFC 6902 test/add/replace/remove on object paths; a failed test is the API's 422."""
    for op in operations:
        *parents, last = [part.replace("~1", "/").replace("~0", "~")
                          for part in op["path"].split("/")[1:]]
        node = target
        for part in parents:
            node = node.setdefault(part, {})
        if op["op"] == "test" and node.get(last) != op["value"]:
            raise PlatformError(Kind.MISCONFIGURED, "kubernetes_rejected",
                                f"JSON patch test of {op['path']} failed")
        if op["op"] in ("add", "replace"):
            node[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            node.pop(last, None)


def _selected(obj: Mapping[str, Any], labels: str | None, fields: str | None) -> bool:
    meta_labels = obj["metadata"].get("labels") or {}
    for part in filter(None, (labels or "").split(",")):
        key, sep, value = part.partition("=")
        if key not in meta_labels or (sep and meta_labels[key] != value):
            return False
    for part in filter(None, (fields or "").split(",")):
        key, _, value = part.partition("=")
        found: Any = obj
        for step in key.split("."):  # metadata.name, as the API server reads it
            found = found.get(step) if isinstance(found, Mapping) else None
        if str(found) != value:
            return False
    return True


class FakeKube:
    """Objects by (kind, namespace, name); `calls` records (verb, kind, name) in order."""

    timeout = 1.0

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self._serial = 0
        self._versions = 0
        # the watch side: what each watch version saw, and the faults to give
        self._seen: dict[str, dict[Key, dict[str, Any]]] = {}
        self._watch_versions = 0
        self._faults: dict[str, int] = {"expired": 0, "broken": 0}
        self.refuse_lists = False

    # ---------------------------------------------------------------- the verbs
    def create_or_keep(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        name = meta.get("name") or f"{meta['generateName']}{self._serial:05d}"
        self.calls.append(("create", obj["kind"], name))
        key = (obj["kind"], meta.get("namespace"), name)
        if key in self.objects:
            return None
        return copy.deepcopy(self.add(obj, name=name))

    def create_or_replace(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        if self.create_or_keep(obj) is None:
            self.calls.append(("replace", obj["kind"], meta["name"]))
            kept = self.objects[key]["metadata"]
            replaced = copy.deepcopy(dict(obj))
            replaced["metadata"] |= {"uid": kept["uid"],
                                     "creationTimestamp": kept["creationTimestamp"],
                                     "resourceVersion": self._version()}
            self.objects[key] = replaced

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        self.calls.append(("replace", obj["kind"], meta["name"]))
        kept = self.objects.get(key)
        if kept is None:
            raise PlatformError(Kind.RETRY_LATER, "kubernetes_conflict", f"no {meta['name']}")
        version = meta.get("resourceVersion")
        if version and version != kept["metadata"].get("resourceVersion"):
            raise PlatformError(Kind.RETRY_LATER, "kubernetes_conflict", "changed meanwhile")
        replaced = copy.deepcopy(dict(obj))
        replaced["metadata"] |= {"uid": kept["metadata"]["uid"],
                                 "creationTimestamp": kept["metadata"]["creationTimestamp"],
                                 "resourceVersion": self._version()}
        self.objects[key] = replaced
        return copy.deepcopy(replaced)

    def read_or_none(self, kind: str, name: str,
                     namespace: str | None = None) -> dict[str, Any] | None:
        self.calls.append(("read", kind, name))
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def delete_if_present(self, kind: str, name: str, namespace: str | None = None,
                          uid: str | None = None, resource_version: str | None = None) -> bool:
        self.calls.append(("delete", kind, name))
        found = self.objects.get((kind, namespace, name))
        if found is None or (uid and found["metadata"]["uid"] != uid):
            return False
        if resource_version and found["metadata"]["resourceVersion"] != resource_version:
            return False
        if found["metadata"].get("finalizers"):
            found["metadata"]["deletionTimestamp"] = self._now()
        else:
            del self.objects[(kind, namespace, name)]
        return True

    def delete_exactly(self, kind: str, name: str, namespace: str, uid: str) -> bool:
        self.calls.append(("delete", kind, name))
        found = self.objects.get((kind, namespace, name))
        if found is None or found["metadata"]["uid"] != uid:
            return False
        del self.objects[(kind, namespace, name)]
        return True

    def patch(self, kind: str, name: str, patch: Mapping[str, Any],
              namespace: str | None = None) -> None:
        self.calls.append(("patch", kind, name))
        found = self.objects.get((kind, namespace, name))
        if found is None:  # what Kube makes of a 404 on a patch
            raise PlatformError(Kind.RETRY_LATER, "kubernetes_conflict", f"no {kind} {name}")
        if isinstance(patch, list):
            _json_patch(found, patch)
        else:
            _merge(found, patch)
        found["metadata"]["resourceVersion"] = self._version()

    def list_items(self, kind: str, namespace: str | None = None, *, labels: str | None = None,
                   fields: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", kind, namespace))
        return [copy.deepcopy(obj) for (k, ns, _), obj in self.objects.items()
                if k == kind and (namespace is None or ns == namespace)
                and _selected(obj, labels, fields)]

    def list_versioned(self, selection: Selection) -> tuple[list[dict[str, Any]], str]:
        self.calls.append(("list", selection.kind, selection.namespace))
        if self.refuse_lists:
            raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable", "refused")
        matching = self._matching(selection)
        version = self._watch_version(matching)
        return [copy.deepcopy(obj) for obj in matching.values()], version

    def watch(self, selection: Selection, resource_version: str, seconds: int) -> FakeWatch:
        self.calls.append(("watch", selection.kind, selection.namespace))
        if resource_version not in self._seen:
            raise Expired(f"version {resource_version} is not kept")
        return FakeWatch(self, selection, resource_version, seconds)

    # ---------------------------------------------------------------- for the tests
    def expire_watches(self) -> None:
        """Every open watch ends with 410 Gone, and no version seen so far can be watched."""
        self._seen.clear()
        self._faults["expired"] += 1

    def break_watches(self) -> None:
        """Every open watch loses its connection."""
        self._faults["broken"] += 1

    def _matching(self, selection: Selection) -> dict[Key, dict[str, Any]]:
        return {key: obj for key, obj in list(self.objects.items())  # taken at once: the
                if key[0] == selection.kind                             # test thread writes
                and (selection.namespace is None or key[1] == selection.namespace)
                and _selected(obj, selection.labels, selection.fields)}

    def _watch_version(self, seen: Mapping[Key, dict[str, Any]]) -> str:
        self._watch_versions += 1
        version = f"w{self._watch_versions}"
        self._seen[version] = {key: copy.deepcopy(obj) for key, obj in seen.items()}
        return version

    def add(self, obj: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
        """Put an object in place as the API server would store it (uid, creation time)."""
        stored = copy.deepcopy(dict(obj))
        meta = stored["metadata"]
        meta["name"] = name or meta["name"]
        meta.setdefault("uid", f"uid-{self._serial}")
        meta.setdefault("creationTimestamp", self._now())
        meta.setdefault("resourceVersion", self._version())
        self.objects[(stored["kind"], meta.get("namespace"), meta["name"])] = stored
        return stored

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.objects[(kind, namespace, name)]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for (k, _, _), obj in self.objects.items() if k == kind]

    def set_job_state(self, name: str, namespace: str, state: str) -> None:
        """Make a Job running, succeeded or failed, as the Job controller would."""
        conditions = {"running": [],
                      "succeeded": [{"type": "Complete", "status": "True"}],
                      "failed": [{"type": "Failed", "status": "True",
                                  "reason": "BackoffLimitExceeded"}]}[state]
        self.get("Job", name, namespace)["status"] = {"conditions": conditions}

    def _version(self) -> str:
        self._versions += 1
        return str(self._versions)

    def _now(self) -> str:
        self._serial += 1
        n = self._serial
        return f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"


class FakeWatch:
    """The changes of one selection after a version, as watch events with a new version."""

    POLL = 0.005

    def __init__(self, kube: FakeKube, selection: Selection, version: str,
                 seconds: float) -> None:
        self._kube, self._selection = kube, selection
        self._seen = dict(kube._seen[version])
        self._until = time.monotonic() + seconds
        self._faults = dict(kube._faults)
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        while not self._closed.is_set() and time.monotonic() < self._until:
            if self._kube._faults["expired"] != self._faults["expired"]:
                raise Expired("too old resource version")
            if self._kube._faults["broken"] != self._faults["broken"]:
                raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable",
                                    "watch connection broke")
            now = self._kube._matching(self._selection)
            changes = [("DELETED", self._seen[k]) for k in self._seen if k not in now]
            changes += [("ADDED" if k not in self._seen else "MODIFIED", obj)
                        for k, obj in now.items() if self._seen.get(k) != obj]
            for event_type, obj in changes:
                key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
                if event_type == "DELETED":
                    del self._seen[key]
                else:
                    self._seen[key] = copy.deepcopy(obj)
                event = copy.deepcopy(obj)
                event["metadata"]["resourceVersion"] = self._kube._watch_version(self._seen)
                yield event_type, event
            self._closed.wait(self.POLL)

    def close(self) -> None:
        self._closed.set()
