"""A watch cache: the objects of a few selections kept in memory by list + watch (what
client-go's informers do), so a read made on every request costs no API call.

One thread per selection lists it (in pages), then watches from the list's resource version.
A watch the server ends is resumed from the last version seen (bookmarks keep that version
fresh). 410 Gone, or a watch that broke, means: list again, then watch again. The cache
answers only once every selection has been listed (a cold start waits, bounded), and stops
answering when one could not be re-listed for longer than `max_stale` seconds.

The cache belongs to one process: each gunicorn worker keeps its own (a forked worker
starts its own threads on first use).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import Expired, Obj, Selection

log = logging.getLogger(__name__)

T = TypeVar("T")
Snapshot = dict[str, list[Obj]]

FIRST_BACKOFF, MAX_BACKOFF = 0.2, 10.0


class WatchStream(Protocol):
    def __iter__(self): ...
    def close(self) -> None: ...


class ListWatch(Protocol):
    """What the cache needs of the Kubernetes verbs (storeplatform.kube.Kube has it)."""

    def list_versioned(self, selection: Selection) -> tuple[list[Obj], str]: ...
    def watch(self, selection: Selection, resource_version: str,
              seconds: int) -> WatchStream: ...


def _key(obj: Obj) -> str:
    """namespace/name, or name: the order the API server lists objects in."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def slim(obj: Obj) -> Obj:
    """The object without its managedFields: no reader needs them, and they are most of the
    size of a Deployment or a Job."""
    meta = obj.get("metadata")
    if not meta or "managedFields" not in meta:
        return obj
    return obj | {"metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


# Every cache of the process, for the fork hook below.
_CACHES: weakref.WeakSet[WatchCache] = weakref.WeakSet()


def caches() -> list[WatchCache]:
    """Every cache of this process."""
    return list(_CACHES)


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads, and maybe a lock one of them held:
    give each cache a fresh lock, and let its first use start the child's own threads."""
    for cache in caches():
        cache._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Informer:
    """One selection's objects, kept current by one thread."""

    def __init__(self, name: str, selection: Selection) -> None:
        self.name = name
        self.selection = selection
        self.objects: dict[str, Obj] = {}
        self.version = ""
        self.listed = False  # at least once
        self.broken_since: float | None = None  # when it last lost track, until re-listed
        self.lists = 0
        self.watches = 0
        self.current: WatchStream | None = None


class WatchCache:
    """Objects of each named selection, in memory; snapshot() reads them with no API call."""

    def __init__(self, kube: ListWatch, selections: Mapping[str, Selection], *,
                 sync_timeout: float = 10.0, max_stale: float = 30.0,
                 watch_seconds: int = 300) -> None:
        self._kube = kube
        self._informers = {name: _Informer(name, sel) for name, sel in selections.items()}
        self._sync_timeout = sync_timeout
        self._max_stale = max_stale
        self._watch_seconds = watch_seconds
        self._changed = threading.Condition(threading.RLock())  # start() runs under it too
        self._generation = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None
        _CACHES.add(self)

    # ------------------------------------------------------------------ reading
    def generation(self) -> int:
        """A number that changes whenever an object does; see snapshot for the errors."""
        with self._changed:
            return self._ready()

    def snapshot(self) -> tuple[int, Snapshot]:
        """(generation, every selection's objects in the API server's list order).

        Waits for the first list of every selection (at most sync_timeout), else
        UPSTREAM_UNAVAILABLE `cache_not_synced`; and is `kubernetes_unavailable` when a
        selection could not be re-listed for over max_stale seconds.
        """
        with self._changed:
            generation = self._ready()
            return generation, {i.name: [i.objects[k] for k in sorted(i.objects)]
                                for i in self._informers.values()}

    def _ready(self) -> int:
        """The generation, once every selection is listed and none is too stale (lock held)."""
        self.start()
        deadline = time.monotonic() + self._sync_timeout
        while not all(i.listed for i in self._informers.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [i.name for i in self._informers.values() if not i.listed]
                raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "cache_not_synced",
                                    f"still reading the cluster after {self._sync_timeout:g} s "
                                    f"({', '.join(missing)}); retry")
            self._changed.wait(remaining)
        now = time.monotonic()
        stale = [i.name for i in self._informers.values()
                 if i.broken_since is not None and now - i.broken_since > self._max_stale]
        if stale:
            raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable",
                                f"lost track of {', '.join(stale)} for over "
                                f"{self._max_stale:g} s (Kubernetes API unreachable); retry")
        return self._generation

    def stats(self) -> dict[str, dict[str, int]]:
        """Per selection: objects held, list and watch calls made so far."""
        with self._changed:
            return {i.name: {"objects": len(i.objects), "lists": i.lists, "watches": i.watches}
                    for i in self._informers.values()}

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Start the threads, once per process (a forked child starts its own)."""
        with self._changed:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._threads = [threading.Thread(target=self._run, args=(i, self._stop),
                                              name=f"watch-{i.name}", daemon=True)
                             for i in self._informers.values()]
        for thread in self._threads:
            thread.start()

    def _forked(self) -> None:
        self._changed = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._threads, self._pid = [], None
        for informer in self._informers.values():
            informer.listed, informer.current = False, None

    def stop(self, timeout: float = 5.0) -> None:
        """End every watch and wait for the threads."""
        self._stop.set()
        with self._changed:
            streams = [i.current for i in self._informers.values() if i.current is not None]
        for stream in streams:
            stream.close()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, informer: _Informer, stop: threading.Event) -> None:
        must_list, backoff = True, FIRST_BACKOFF
        while not stop.is_set():
            try:
                if must_list:
                    self._list(informer)
                    must_list, backoff = False, FIRST_BACKOFF
                self._watch(informer, stop)  # returns when the server ended the watch
            except Expired as err:
                log.info("watch of %s expired (%s): listing again", informer.name, err)
                must_list = True
            except Exception as err:  # unreachable, refused, broken stream: list again
                if stop.is_set():
                    return
                message = err.message if isinstance(err, PlatformError) else repr(err)
                log.warning("watch of %s failed: %s; listing again in %.1f s",
                            informer.name, message, backoff)
                with self._changed:
                    if informer.broken_since is None:
                        informer.broken_since = time.monotonic()
                must_list = True
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _list(self, informer: _Informer) -> None:
        items, version = self._kube.list_versioned(informer.selection)
        objects = {_key(obj): slim(obj) for obj in items}
        with self._changed:
            informer.objects, informer.version = objects, version
            informer.listed, informer.broken_since = True, None
            informer.lists += 1
            self._generation += 1
            self._changed.notify_all()

    def _watch(self, informer: _Informer, stop: threading.Event) -> None:
        stream = self._kube.watch(informer.selection, informer.version, self._watch_seconds)
        with self._changed:
            informer.current = stream
            informer.watches += 1
        if stop.is_set():  # stopped while the watch was being opened
            stream.close()
        try:
            for event_type, obj in stream:
                self._apply(informer, event_type, obj)
        finally:
            with self._changed:
                informer.current = None

    def _apply(self, informer: _Informer, event_type: str, obj: Obj) -> None:
        version = (obj.get("metadata") or {}).get("resourceVersion")
        with self._changed:
            if version:
                informer.version = str(version)
            if event_type in ("ADDED", "MODIFIED"):
                informer.objects[_key(obj)] = slim(obj)
            elif event_type == "DELETED":
                informer.objects.pop(_key(obj), None)
            else:  # BOOKMARK: only a newer version to resume from
                return
            self._generation += 1
            self._changed.notify_all()


class Derived(Generic[T]):
    """A value computed from a cache's snapshot, and computed again only once it changed
    (or, with max_age, once it is older than that many seconds: for values that also depend
    on the time)."""

    def __init__(self, cache: WatchCache, compute: Callable[[Snapshot], T],
                 max_age: float | None = None) -> None:
        self._cache = cache
        self._compute = compute
        self._max_age = max_age
        self._lock = threading.Lock()
        self._memo: tuple[int, float, Any] | None = None

    def _fresh(self, memo: tuple[int, float, Any] | None, generation: int) -> bool:
        return memo is not None and memo[0] == generation and (
            self._max_age is None or time.monotonic() - memo[1] < self._max_age)

    def __call__(self) -> T:
        memo = self._memo
        if self._fresh(memo, self._cache.generation()):
            return memo[2]  # type: ignore[index]
        with self._lock:  # one thread computes; the others then find it done
            generation, snapshot = self._cache.snapshot()
            if self._fresh(self._memo, generation):
                return self._memo[2]  # type: ignore[index]
            value = self._compute(snapshot)
            self._memo = (generation, time.monotonic(), value)
            return value
