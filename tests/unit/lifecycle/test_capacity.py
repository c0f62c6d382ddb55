"""The store cap where stores are made: places in one ConfigMap, written at the version read."""

import pytest

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError
from storeplatform.lifecycle import capacity

NS = "storeplatform"
SETTINGS = {"MAX_STORES": 2, "PLATFORM_NAMESPACE": NS}


def store_namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": contract.store_labels(name)}}


def held(fake_kube):
    return set(fake_kube.get("ConfigMap", contract.STORES_CONFIG_MAP, NS)["data"])


def test_claims_count_existing_stores_and_recent_claims(fake_kube):
    fake_kube.add(store_namespace("store-a"))
    capacity.claim(fake_kube, "store-b", SETTINGS, clock=lambda: 1000.0)
    assert held(fake_kube) == {"store-a", "store-b"}
    with pytest.raises(PlatformError) as err:
        capacity.claim(fake_kube, "store-c", SETTINGS, clock=lambda: 1001.0)
    assert (err.value.kind, err.value.code) == (Kind.LIMIT_REACHED, "store_limit_reached")
    capacity.claim(fake_kube, "store-b", SETTINGS, clock=lambda: 1002.0)  # already holds one


def test_a_claim_whose_store_never_came_lapses_and_a_gone_store_frees_its_place(fake_kube):
    fake_kube.add(store_namespace("store-a"))
    capacity.claim(fake_kube, "store-b", SETTINGS, clock=lambda: 1000.0)
    fake_kube.delete_if_present("Namespace", "store-a")  # deleted meanwhile
    later = 1000.0 + capacity.CLAIM_SECONDS + 1  # store-b never made its namespace
    capacity.claim(fake_kube, "store-c", SETTINGS, clock=lambda: later)
    capacity.claim(fake_kube, "store-d", SETTINGS, clock=lambda: later)
    assert held(fake_kube) == {"store-c", "store-d"}


def test_of_two_concurrent_claims_for_the_last_place_one_is_retried(fake_kube):
    """Both read the same version; the second write is refused (the API server's 409)."""
    capacity.claim(fake_kube, "store-a", SETTINGS, clock=lambda: 1000.0)
    stale = fake_kube.read_or_none("ConfigMap", contract.STORES_CONFIG_MAP, NS)
    real_read = fake_kube.read_or_none
    capacity.claim(fake_kube, "store-b", SETTINGS, clock=lambda: 1001.0)  # takes the last one
    fake_kube.read_or_none = lambda kind, name, namespace=None: (
        stale if kind == "ConfigMap" else real_read(kind, name, namespace))
    with pytest.raises(PlatformError) as err:
        capacity.claim(fake_kube, "store-c", SETTINGS, clock=lambda: 1002.0)
    assert err.value.kind is Kind.RETRY_LATER
    fake_kube.read_or_none = real_read
    with pytest.raises(PlatformError) as err:  # the retry sees the truth: full
        capacity.claim(fake_kube, "store-c", SETTINGS, clock=lambda: 1003.0)
    assert err.value.kind is Kind.LIMIT_REACHED
    assert held(fake_kube) == {"store-a", "store-b"}


def test_a_store_made_and_deleted_soon_after_frees_its_place_at_once(fake_kube):
    capacity.claim(fake_kube, "store-a", SETTINGS, clock=lambda: 1000.0)
    fake_kube.add(store_namespace("store-a"))
    capacity.fulfil(fake_kube, "store-a", SETTINGS)
    capacity.claim(fake_kube, "store-b", SETTINGS, clock=lambda: 1001.0)
    fake_kube.delete_if_present("Namespace", "store-a")  # deleted within CLAIM_SECONDS
    capacity.claim(fake_kube, "store-c", SETTINGS, clock=lambda: 1002.0)
    assert held(fake_kube) == {"store-b", "store-c"}


def test_fulfil_writes_only_once(fake_kube):
    capacity.claim(fake_kube, "store-a", SETTINGS, clock=lambda: 1000.0)
    capacity.fulfil(fake_kube, "store-a", SETTINGS)
    version = fake_kube.get("ConfigMap", contract.STORES_CONFIG_MAP, NS)["metadata"].get(
        "resourceVersion")
    capacity.fulfil(fake_kube, "store-a", SETTINGS)
    cap_map = fake_kube.get("ConfigMap", contract.STORES_CONFIG_MAP, NS)
    assert cap_map["data"]["store-a"] == capacity.MADE
    assert cap_map["metadata"].get("resourceVersion") == version


def test_made_is_written_at_the_claimed_version_and_read_again_after_another_claim(
        fake_kube):
    claimed = capacity.claim(fake_kube, "store-a", SETTINGS, clock=lambda: 1000.0)
    capacity.claim(fake_kube, "store-b", SETTINGS, clock=lambda: 1001.0)  # changes it
    before = len(fake_kube.calls)
    capacity.fulfil(fake_kube, "store-a", SETTINGS, claimed)
    data = fake_kube.get("ConfigMap", contract.STORES_CONFIG_MAP, NS)["data"]
    assert data["store-a"] == capacity.MADE and data["store-b"] == "1001"
    assert [verb for verb, _, _ in fake_kube.calls[before:]] == ["replace", "read", "replace"]
