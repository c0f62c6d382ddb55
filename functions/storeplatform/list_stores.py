"""list-stores: every store and its status, read from Kubernetes alone (no database).

The gateway sends it store.list events directly and gets a store.list.result event back,
and admin-password reveals (POST /admin-password), answered from the one-time Secret the
reset Job left (lifecycle/owner_access.py). It is also the Broker's dead-letter sink: what
could not be delivered is kept as an Event; and it hears the runner's lifecycle events
(POST /lifecycle), whose durations become the provisioning and deletion histograms.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, deadletters, eventauth, metrics
from storeplatform.app import accepted, add_function, authenticate, decode, function_app
from storeplatform.events import new_event
from storeplatform.kube import CONNECTION_SETTINGS, Kube, connect
from storeplatform.lifecycle import cluster, owner_access

log = logging.getLogger(__name__)

# What the runner reports (Trigger runner-lifecycle: every event of its source).
LIFECYCLE = (contract.READY, contract.FAILED, contract.DELETED, contract.ADMIN_PASSWORD_CHANGED)
# Events a Trigger may give up on (and lists, which never pass the Broker).
DEAD_LETTER_TYPES = (contract.CREATE, contract.DELETE, contract.LIST,
                     contract.RESET_ADMIN_PASSWORD, *LIFECYCLE)
# The Triggers whose dead-letter sink this is (knative/500-triggers.yaml).
DEAD_LETTER_TRIGGERS = ("create-store", "delete-store", "reset-admin-password",
                        "runner-lifecycle")

SETTINGS = CONNECTION_SETTINGS | eventauth.SETTINGS | {
    "PLATFORM_NAMESPACE": contract.PLATFORM_NAMESPACE, "LOG_LEVEL": "INFO",
    # Who may send dead letters (empty: the Triggers that name list-stores as their sink).
    "DEAD_LETTER_SENDERS": ""}
GATEWAY_ACCOUNT = "storeplatform-gateway"


def answer(event: BaseCloudEvent, kube: Kube, platform_ns: str) -> BaseCloudEvent:
    """Decode the list event, read the cluster, reply with the view."""
    contract.validate_list_data(event.get_data())
    view = cluster.view(cluster.read_state(kube, platform_ns))
    metrics.stores_by_status(view["stores"])
    return new_event(contract.LIST_RESULT, contract.LIST_SOURCE, None, view)


def reveal(event: BaseCloudEvent, kube: Kube, platform_ns: str) -> BaseCloudEvent:
    """Decode the reveal event; reply with the reset's state (the password at most once)."""
    store, reset_id = contract.parse_reveal_event(event.get_data())
    state = owner_access.reveal(kube, store, reset_id, platform_ns, datetime.now(UTC))
    return new_event(contract.REVEAL_RESULT, contract.LIST_SOURCE, store, state)


def observe(event: BaseCloudEvent, seen: deque[str]) -> str:
    """A runner lifecycle event: its duration into the histograms (a redelivery to this
    worker is counted once)."""
    data = event.get_data() if isinstance(event.get_data(), dict) else {}
    action, seconds = data.get("action"), data.get("durationSeconds")
    outcome = event.get_type().removeprefix(contract.EVENT_PREFIX)
    if event.get_id() in seen:
        return "duplicate; already counted"
    seen.append(event.get_id())
    if action in (contract.ACTION_INSTALL, contract.ACTION_DELETE) and isinstance(
            seconds, (int, float)) and not isinstance(seconds, bool):
        metrics.lifecycle(action, outcome, float(seconds))
        return f"{action} {outcome} after {seconds:.1f} s"
    return f"{outcome} noted"


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The list-stores function (gunicorn 'storeplatform.list_stores:create_app()')."""
    settings = config.start(SETTINGS, overrides)
    verbs = kube or connect(settings)
    platform_ns = settings["PLATFORM_NAMESPACE"]
    # Lists and reveals come from the gateway alone; lifecycle events and dead letters from
    # the Broker alone, delivering for the Triggers that name this function.
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    gateway = eventauth.endpoint(keys, settings, "list-stores", [
        contract.service_account_subject(platform_ns, GATEWAY_ACCOUNT)],
        settings["EVENT_SENDERS"])
    lifecycle = eventauth.endpoint(keys, settings, "list-stores", [
        contract.trigger_sender(platform_ns, "runner-lifecycle")])
    broker = eventauth.endpoint(keys, settings, "list-stores", [
        contract.trigger_sender(platform_ns, trigger) for trigger in DEAD_LETTER_TRIGGERS],
        settings["DEAD_LETTER_SENDERS"])
    app = function_app("list-stores", (contract.LIST,),
                       lambda event: answer(event, verbs, platform_ns), gateway)
    add_function(app, "/admin-password", "list-stores", (contract.REVEAL_ADMIN_PASSWORD,),
                 lambda event: reveal(event, verbs, platform_ns), gateway)
    seen: deque[str] = deque(maxlen=1024)
    add_function(app, "/lifecycle", "list-stores", LIFECYCLE,
                 lambda event: observe(event, seen), lifecycle)
    metrics.before_scrape(app, lambda: metrics.stores_by_status(
        cluster.view(cluster.read_state(verbs, platform_ns))["stores"]))

    @app.post("/dead-letter")
    def dead_letter():
        """Keep an event the Broker gave up delivering; 202, empty."""
        authenticate(broker)
        letter = deadletters.record(decode(DEAD_LETTER_TYPES))
        metrics.dead_letter(letter["type"])
        log.warning("dead letter %s %s subject=%s: %s", letter["id"], letter["type"],
                    letter["subject"], letter["error"])
        verbs.create_or_keep(deadletters.kube_event(letter, platform_ns))
        return accepted()

    return app
