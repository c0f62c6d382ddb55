"""The engine seam: engines are data, and a new engine needs no change to the core."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storeplatform import contract, engines, manifests, status

CHART_TEMPLATES = Path(__file__).resolve().parents[2] / "store-chart" / "templates"


def test_available_and_planned_engines_do_not_overlap():
    assert engines.DEFAULT in engines.AVAILABLE
    assert not set(engines.AVAILABLE) & set(engines.PLANNED)
    with pytest.raises(KeyError):
        engines.get("medusa")


@pytest.mark.parametrize("name", sorted(engines.AVAILABLE))
def test_every_available_engine_has_its_chart_templates_and_data(name):
    engine = engines.get(name)
    assert engine.name == name == engine.chart_values["engine"]
    assert (CHART_TEMPLATES / name).is_dir()
    assert engine.credential_keys and len(set(engine.credential_keys)) == len(
        engine.credential_keys)
    assert engine.storefront_component and engine.storefront_title


@pytest.fixture
def second_engine(monkeypatch):
    """A made-up engine, registered the way a new engines/<name>.py would be."""
    engine = replace(engines.get("woocommerce"), name="medusa",
                     chart_values={"engine": "medusa"}, credential_keys=("db-password",),
                     storefront_component="storefront", storefront_title="the storefront",
                     admin_path="app/")
    monkeypatch.setitem(engines.AVAILABLE, "medusa", engine)
    monkeypatch.setattr(engines, "PLANNED", ())
    return engine


def test_a_new_engine_is_accepted_installed_and_read_without_core_changes(second_engine):
    assert contract.validate_engine("medusa") == "medusa"
    assert manifests.chart_values("store-m", "medusa", None)["engine"] == "medusa"
    secret = manifests.credentials_secret("store-m", "medusa")["stringData"]
    assert set(secret) == {"db-password", "admin-user", "admin-email"}
    namespace = manifests.namespace("store-m", "medusa", datetime.now(UTC))
    namespace["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    serving = {"metadata": {"labels": {contract.LABEL_STORE: "store-m",
                                       contract.LABEL_COMPONENT: "storefront"}},
               "status": {"availableReplicas": 1}}
    ingress = {"metadata": {"labels": {contract.LABEL_STORE: "store-m"}},
               "spec": {"rules": [{"host": "store-m.localhost"}]}}
    namespace["metadata"]["annotations"][contract.ANNOTATION_PHASE] = "ready"  # runner done
    waiting = status.store_status(namespace, [], [], [], [ingress])
    ready = status.store_status(namespace, [], [], [serving], [ingress])
    assert waiting["progress"] == "waiting for the storefront to become available"
    assert (ready["status"], ready["engine"]) == ("ready", "medusa")
    assert ready["adminUrl"] == "http://store-m.localhost/app/"
