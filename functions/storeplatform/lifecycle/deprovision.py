"""delete-store's work: stop a running install, then start the Job that uninstalls the
store and removes its namespace. Deleting a store that does not exist is a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from storeplatform import contract, manifests
from storeplatform.intent import Intent
from storeplatform.kube import Kube
from storeplatform.lifecycle import identity, intents, jobs, namespaces

SETTINGS: dict[str, Any] = jobs.RUNNER_SETTINGS | intents.SETTINGS


def delete(kube: Kube, store: str, wanted: Intent, settings: Mapping[str, Any],
           clock: intents.Clock = intents.utcnow) -> jobs.Outcome:
    """A delete event: deprovision the store if it is the store's latest intent; then sweep
    the intent records that expired (deletes are what leave records behind).
    """
    outcome = intents.latest_only(
        kube, store, wanted, settings,
        lambda verbs: deprovision(verbs, store, wanted.event_id, settings), clock)
    intents.sweep(kube, settings, clock)
    return outcome


def deprovision(kube: Kube, store: str, event_id: str,
                settings: Mapping[str, Any]) -> jobs.Outcome:
    """Everything one delete event does; safe to repeat."""
    platform_ns = settings["PLATFORM_NAMESPACE"]
    job = manifests.runner_job(contract.ACTION_DELETE, store, event_id, settings)

    install = kube.read_or_none("Job", contract.job_name(contract.ACTION_INSTALL, store),
                                platform_ns)
    namespace = namespaces.read_managed(kube, store)
    if namespace is not None:  # marked first: no moment shows the install gone, no delete
        namespaces.mark_deleting(kube, store)
    if install is not None:
        jobs.remove(kube, install)  # stops a running create; its pod is killed
    if namespace is None:
        return jobs.Outcome(None, note="store does not exist; nothing to do")
    # A terminating namespace refuses new objects: its binding stays as it is.
    identity.ensure(kube, store, namespace, platform_ns,
                    bind=not namespaces.is_terminating(namespace))
    return jobs.start_once(kube, job, event_id)
