import pytest

from storeplatform import contract as c
from storeplatform.errors import ApiError


@pytest.mark.parametrize("name", ["store-a", "store-1", "store-abc-def", "store-" + "x" * 34])
def test_valid_names(name):
    assert c.validate_store_name(name) == name


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
    with pytest.raises(ApiError) as err:
        c.validate_store_name(name)
    assert err.value.status == 400
    assert err.value.code == "invalid_name"
    assert fragment in err.value.message


def test_engine_defaults_to_woocommerce():
    assert c.validate_engine(None) == "woocommerce"


def test_medusa_is_501_with_a_clear_message():
    with pytest.raises(ApiError) as err:
        c.validate_engine("medusa")
    assert err.value.status == 501
    assert "not available yet" in err.value.message


@pytest.mark.parametrize("engine", ["shopify", "", 3, ["woocommerce"]])
def test_unknown_engine_is_400(engine):
    with pytest.raises(ApiError) as err:
        c.validate_engine(engine)
    assert (err.value.status, err.value.code) == (400, "invalid_engine")


@pytest.mark.parametrize(("data", "code"), [
    ([], "invalid_data"),
    ("store-a", "invalid_data"),
    ({"name": "store-a", "size": 3}, "unknown_field"),
    ({"engine": "woocommerce"}, "invalid_name"),
    ({"name": "bad"}, "invalid_name"),
])
def test_bad_event_data(data, code):
    with pytest.raises(ApiError) as err:
        c.parse_store_event("store-a", data)
    assert err.value.code == code


def test_subject_must_match_name():
    with pytest.raises(ApiError) as err:
        c.parse_store_event("store-b", {"name": "store-a"})
    assert err.value.code == "subject_mismatch"


def test_delete_ignores_engine():
    assert c.parse_store_event(None, {"name": "store-a", "engine": "medusa"},
                               check_engine=False) == ("store-a", "woocommerce")


def test_longest_name_fits_every_derived_name():
    longest = "store-" + "x" * 34
    assert len("helm-delete-" + longest) + len("-abcde") <= 63
