"""create-store: the Broker delivers a store.create event; the store is provisioned.

Answers 202 with an empty body: a Knative subscriber's 2xx must be empty or a CloudEvent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, eventauth, intent
from storeplatform.app import add_function, function_app
from storeplatform.events import request_facts
from storeplatform.kube import Kube, connect
from storeplatform.lifecycle import owner_access, provision
from storeplatform.lifecycle.jobs import Outcome, check_settings

SETTINGS = provision.SETTINGS | owner_access.SETTINGS | eventauth.SETTINGS


def handle(event: BaseCloudEvent, kube: Kube, settings: Mapping[str, Any]) -> Outcome:
    """Decode the create event, provision the store (unless a newer intent was recorded)."""
    store, engine = contract.parse_store_event(event.get_subject(), event.get_data())
    wanted = intent.of_event(intent.CREATE, event, datetime.now(UTC))
    return provision.create(kube, store, engine, wanted, settings | request_facts(event))


def reset_admin_password(event: BaseCloudEvent, kube: Kube,
                         settings: Mapping[str, Any]) -> Outcome:
    """Decode the reset event, start the store's admin-password reset Job."""
    store = contract.parse_reset_event(event.get_subject(), event.get_data())
    return owner_access.reset(kube, store, event.get_id(), settings | request_facts(event))


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The create-store function (gunicorn 'storeplatform.create_store:create_app()');
    POST /admin-password takes admin-password resets (their own Trigger)."""
    settings = config.start(SETTINGS, overrides)
    check_settings(settings)
    verbs = kube or connect(settings)
    # Only the Broker, delivering for Trigger create-store (or reset-admin-password on its
    # own path), may send here (docs/security.md).
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    platform_ns = settings["PLATFORM_NAMESPACE"]
    senders = eventauth.endpoint(keys, settings, "create-store",
                                 [contract.trigger_sender(platform_ns, "create-store")],
                                 settings["EVENT_SENDERS"])
    resets = eventauth.endpoint(keys, settings, "create-store",
                                [contract.trigger_sender(platform_ns, "reset-admin-password")])
    app = function_app("create-store", (contract.CREATE,),
                       lambda event: handle(event, verbs, settings), senders)
    add_function(app, "/admin-password", "create-store", (contract.RESET_ADMIN_PASSWORD,),
                 lambda event: reset_admin_password(event, verbs, settings), resets)
    return app
