"""delete-store: the Broker delivers a store.delete event; the store is deprovisioned.

Answers 202 with an empty body, also when there was no such store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, eventauth, intent
from storeplatform.app import function_app
from storeplatform.events import request_facts
from storeplatform.kube import Kube, connect
from storeplatform.lifecycle import deprovision
from storeplatform.lifecycle.jobs import Outcome, check_settings

SETTINGS = deprovision.SETTINGS | eventauth.SETTINGS


def handle(event: BaseCloudEvent, kube: Kube, settings: Mapping[str, Any]) -> Outcome:
    """Decode the delete event (its engine, if any, is ignored), deprovision the store
    (unless a newer intent was recorded)."""
    store, _ = contract.parse_store_event(event.get_subject(), event.get_data(),
                                          check_engine=False)
    wanted = intent.of_event(intent.DELETE, event, datetime.now(UTC))
    return deprovision.delete(kube, store, wanted, settings | request_facts(event))


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The delete-store function (gunicorn 'storeplatform.delete_store:create_app()')."""
    settings = config.start(SETTINGS, overrides)
    check_settings(settings)
    verbs = kube or connect(settings)
    # Only the Broker, delivering for Trigger delete-store, may send here (docs/security.md).
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    senders = eventauth.endpoint(keys, settings,
                                 "delete-store", [contract.trigger_sender(
                                     settings["PLATFORM_NAMESPACE"], "delete-store")],
                                 settings["EVENT_SENDERS"])
    return function_app("delete-store", (contract.DELETE,),
                        lambda event: handle(event, verbs, settings), senders)
