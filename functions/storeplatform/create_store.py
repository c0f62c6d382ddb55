"""create-store: the Broker delivers a store.create event; the store is provisioned.

Answers 202 with an empty body: a Knative subscriber's 2xx must be empty or a CloudEvent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, eventauth
from storeplatform.app import function_app
from storeplatform.kube import Kube, connect
from storeplatform.lifecycle import provision
from storeplatform.lifecycle.jobs import Outcome

SETTINGS = provision.SETTINGS | eventauth.SETTINGS


def handle(event: BaseCloudEvent, kube: Kube, settings: Mapping[str, Any]) -> Outcome:
    """Decode the create event, provision the store."""
    store, engine = contract.parse_store_event(event.get_subject(), event.get_data())
    return provision.provision(kube, store, engine, event.get_id(), settings)


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The create-store function (gunicorn 'storeplatform.create_store:create_app()')."""
    settings = config.start(SETTINGS, overrides)
    verbs = kube or connect(settings)
    # Only the Broker, delivering for Trigger create-store, may send here (docs/security.md).
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    senders = eventauth.endpoint(keys, settings,
                                 "create-store", [contract.trigger_sender(
                                     settings["PLATFORM_NAMESPACE"], "create-store")],
                                 settings["EVENT_SENDERS"])
    return function_app("create-store", (contract.CREATE,),
                        lambda event: handle(event, verbs, settings), senders)
