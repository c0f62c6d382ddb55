"""list-stores: every store and its status, read from Kubernetes alone (no database).

The gateway sends it store.list events directly and gets a store.list.result event back.
It is also the Broker's dead-letter sink: what could not be delivered is kept as an Event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, deadletters, eventauth
from storeplatform.app import accepted, authenticate, decode, function_app
from storeplatform.events import new_event
from storeplatform.kube import CONNECTION_SETTINGS, Kube, connect
from storeplatform.lifecycle import cluster

log = logging.getLogger(__name__)

SETTINGS = CONNECTION_SETTINGS | eventauth.SETTINGS | {
    "PLATFORM_NAMESPACE": contract.PLATFORM_NAMESPACE, "LOG_LEVEL": "INFO",
    # Who may send dead letters (empty: the Triggers that name list-stores as their sink).
    "DEAD_LETTER_SENDERS": ""}
GATEWAY_ACCOUNT = "storeplatform-gateway"


def answer(event: BaseCloudEvent, kube: Kube, platform_ns: str) -> BaseCloudEvent:
    """Decode the list event, read the cluster, reply with the view."""
    contract.validate_list_data(event.get_data())
    view = cluster.view(cluster.read_state(kube, platform_ns))
    return new_event(contract.LIST_RESULT, contract.LIST_SOURCE, None, view)


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The list-stores function (gunicorn 'storeplatform.list_stores:create_app()')."""
    settings = config.start(SETTINGS, overrides)
    verbs = kube or connect(settings)
    platform_ns = settings["PLATFORM_NAMESPACE"]
    # List requests come from the gateway alone; dead letters from the Broker alone,
    # delivering for the Triggers whose dead-letter sink this is.
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    gateway = eventauth.endpoint(keys, settings, "list-stores", [
        contract.service_account_subject(platform_ns, GATEWAY_ACCOUNT)],
        settings["EVENT_SENDERS"])
    broker = eventauth.endpoint(keys, settings, "list-stores", [
        contract.trigger_sender(platform_ns, trigger)
        for trigger in ("create-store", "delete-store")], settings["DEAD_LETTER_SENDERS"])
    app = function_app("list-stores", (contract.LIST,),
                       lambda event: answer(event, verbs, platform_ns), gateway)

    @app.post("/dead-letter")
    def dead_letter():
        """Keep an event the Broker gave up delivering; 202, empty."""
        authenticate(broker)
        letter = deadletters.record(decode((contract.CREATE, contract.DELETE, contract.LIST)))
        log.warning("dead letter %s %s subject=%s: %s", letter["id"], letter["type"],
                    letter["subject"], letter["error"])
        verbs.create_or_keep(deadletters.kube_event(letter, platform_ns))
        return accepted()

    return app
