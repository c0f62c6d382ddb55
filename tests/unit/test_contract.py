import pytest

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError


@pytest.mark.parametrize("name", ["store-a", "store-1", "store-abc-def", "store-" + "x" * 34])
def test_valid_names(name):
    assert contract.validate_store_name(name) == name


@pytest.mark.parametrize(("name", "fragment"), [
    ("", "required"),
    (None, "required"),
    (42, "required"),
    ("shop-a", "must start with 'store-'"),
    ("Store-a", "must start with 'store-'"),
    ("store-" + "x" * 35, "at most 40"),
    ("store-A", "lowercase"),
    ("store-a_b", "lowercase"),
    ("store-a.b", "lowercase"),
    ("store-", "end with a letter or digit"),
    ("store-a-", "end with a letter or digit"),
    ("store-ä", "lowercase"),
    ("store-a\n", "lowercase"),
])
def test_invalid_names(name, fragment):
    with pytest.raises(PlatformError) as err:
        contract.validate_store_name(name)
    assert err.value.kind is Kind.INVALID
    assert err.value.code == "invalid_name"
    assert fragment in err.value.message


def test_engine_defaults_to_woocommerce():
    assert contract.validate_engine(None) == "woocommerce"


def test_medusa_is_501_with_a_clear_message():
    with pytest.raises(PlatformError) as err:
        contract.validate_engine("medusa")
    assert err.value.kind is Kind.NOT_AVAILABLE
    assert "not available yet" in err.value.message


@pytest.mark.parametrize("engine", ["shopify", "", 3, ["woocommerce"], {"a": 1}])
def test_unknown_engine_is_400(engine):
    with pytest.raises(PlatformError) as err:
        contract.validate_engine(engine)
    assert (err.value.kind, err.value.code) == (Kind.INVALID, "invalid_engine")


@pytest.mark.parametrize(("data", "code"), [
    ([], "invalid_data"),
    ("store-a", "invalid_data"),
    ({"name": "store-a", "size": 3}, "unknown_field"),
    ({"engine": "woocommerce"}, "invalid_name"),
    ({"name": "bad"}, "invalid_name"),
])
def test_bad_event_data(data, code):
    with pytest.raises(PlatformError) as err:
        contract.parse_store_event("store-a", data)
    assert err.value.code == code


def test_subject_must_match_name():
    with pytest.raises(PlatformError) as err:
        contract.parse_store_event("store-b", {"name": "store-a"})
    assert err.value.code == "subject_mismatch"


def test_delete_ignores_engine():
    assert contract.parse_store_event(None, {"name": "store-a", "engine": "medusa"},
                               check_engine=False) == ("store-a", "woocommerce")


def test_longest_name_fits_every_derived_name():
    longest = "store-" + "x" * 34
    assert len("helm-delete-" + longest) + len("-abcde") <= 63


@pytest.mark.parametrize(("action", "name"), [(contract.ACTION_INSTALL, "helm-install-store-a"),
                                              (contract.ACTION_DELETE, "helm-delete-store-a")])
def test_job_names_are_deterministic(action, name):
    assert contract.job_name(action, "store-a") == name


def test_the_values_secret_is_named_after_the_install_job():
    assert contract.values_secret_name("store-a") == "helm-install-store-a"


@pytest.mark.parametrize(("labels", "managed"), [
    ({"storeplatform.io/store": "store-a"}, True),
    ({"storeplatform.io/store": "store-b"}, False),
    ({}, False),
])
def test_a_namespace_is_a_store_s_when_its_label_names_it(labels, managed):
    assert contract.manages({"metadata": {"name": "store-a", "labels": labels}}) is managed


def test_every_event_type_and_source_lives_here():
    assert contract.LIST_RESULT == "io.storeplatform.store.list.result"
    assert {contract.GATEWAY_SOURCE, contract.RUNNER_SOURCE, contract.LIST_SOURCE} == {
        "/storeplatform/gateway", "/storeplatform/runner", "/storeplatform/list-stores"}


@pytest.mark.parametrize("data", [None, {}])
def test_list_events_carry_no_data(data):
    contract.validate_list_data(data)


@pytest.mark.parametrize("data", [{"filter": "x"}, [], "all"])
def test_list_events_with_data_are_invalid(data):
    with pytest.raises(PlatformError) as err:
        contract.validate_list_data(data)
    assert err.value.kind is Kind.INVALID


@pytest.mark.parametrize("body", [b"", b"  ", b"{}", b'{"engine": "woocommerce"}'])
def test_requested_engine(body):
    assert contract.requested_engine(body) == "woocommerce"


@pytest.mark.parametrize(("body", "code"), [
    (b"{not json", "invalid_json"), (b"\xff", "invalid_json"), (b"[1]", "invalid_json"),
    (b'{"size": "xl"}', "unknown_field"), (b'{"engine": "shopify"}', "invalid_engine"),
])
def test_requested_engine_refuses(body, code):
    with pytest.raises(PlatformError) as err:
        contract.requested_engine(body)
    assert err.value.code == code
