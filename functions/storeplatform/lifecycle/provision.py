"""create-store's work: the store's namespace, credentials and runner access, then its
install Job. Every step tolerates "already there"; the credentials are never regenerated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from storeplatform import contract, fanout, manifests
from storeplatform.errors import Kind, PlatformError
from storeplatform.intent import Intent
from storeplatform.kube import Kube
from storeplatform.lifecycle import capacity, identity, intents, jobs, namespaces
from storeplatform.status import job_state

SETTINGS: dict[str, Any] = jobs.RUNNER_SETTINGS | capacity.SETTINGS | intents.SETTINGS | {
    "RUNNER_CHART_PATH": "/opt/store-chart",
    "STORE_VALUES_PROFILE": "local",
    "STORE_BASE_DOMAIN": "",
}


def create(kube: Kube, store: str, engine: str, wanted: Intent,
           settings: Mapping[str, Any], clock: intents.Clock = intents.utcnow) -> jobs.Outcome:
    """A create event: provision the store if it is the store's latest intent."""
    return intents.latest_only(
        kube, store, wanted, settings,
        lambda verbs: provision(verbs, store, engine, wanted.event_id, settings), clock)


def provision(kube: Kube, store: str, engine: str, event_id: str,
              settings: Mapping[str, Any]) -> jobs.Outcome:
    """Everything one create event does; safe to repeat. RETRY_LATER while a delete runs."""
    platform_ns = settings["PLATFORM_NAMESPACE"]
    namespace = manifests.namespace(store, engine, datetime.now(UTC))
    credentials = manifests.credentials_secret(store, engine)  # made once: no new passwords
    values = manifests.values_secret(store, engine, settings["STORE_BASE_DOMAIN"] or None,
                                     platform_ns)
    job = manifests.runner_job(contract.ACTION_INSTALL, store, event_id, settings)

    delete_name = contract.job_name(contract.ACTION_DELETE, store)
    # The reads this event decides on, together (fanout): a create is acknowledged after
    # the fewest round trips in sequence that keep every rule below.
    delete_job, standing, install_job = fanout.all_of(
        lambda: kube.read_or_none("Job", delete_name, platform_ns),
        lambda: namespaces.read_managed(kube, store),
        lambda: kube.read_or_none("Job", job["metadata"]["name"], platform_ns))
    if delete_job is not None and job_state(delete_job) == "running":
        raise _being_deleted(store)
    # A `deleting` mark with no delete Job running is a delete that never finished (it was
    # dead-lettered, or its Job failed and expired): this create is the newer intent, and
    # the intent lease means no delete is being applied right now. Only Kubernetes removing
    # the namespace makes it wait.
    if standing is not None and namespaces.is_terminating(standing):
        raise _being_deleted(store)
    claimed = None
    if standing is None:
        claimed = capacity.claim(kube, store, settings)  # LIMIT_REACHED: nothing is made
        standing = kube.create_or_keep(namespace) or namespaces.read_managed(kube, store)
    if standing is None:  # made and gone at once: a delete raced us
        raise _being_deleted(store)
    made = standing
    # Once the namespace stands, what goes in it and beside it is independent. The values
    # are written now only where no Job stands (start_once rewrites them for a replaced one).
    fanout.all_of(
        # First: it runs in this thread, so its own two calls go out together too.
        lambda: identity.ensure(kube, store, made, platform_ns),
        lambda: capacity.fulfil(kube, store, settings, claimed),
        lambda: kube.create_or_keep(credentials),  # kept if there: no new passwords
        *([lambda: jobs.remove(kube, delete_job)]  # an earlier store's finished delete
          if delete_job is not None else []),
        *([lambda: kube.create_or_replace(values)] if install_job is None else []))
    return jobs.start_once(kube, job, event_id, values, standing=install_job,
                           values_written=True)


def _being_deleted(store: str) -> PlatformError:
    return PlatformError(Kind.RETRY_LATER, "store_deleting",
                         f"store {store} is being deleted; retry when it is gone")
