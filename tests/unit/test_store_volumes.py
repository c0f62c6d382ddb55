"""A store's data goes with the store: no chart setting pretends to keep it.

Deleting a store deletes its namespace, and with it every PersistentVolumeClaim in it,
whatever `helm.sh/resource-policy: keep` says (that annotation only stops `helm uninstall`).
So the chart offers no keepOnUninstall (docs/contract.md "Store data").
"""

import pytest
import storechart

from tests.conftest import unavailable


@pytest.fixture(scope="module")
def helm():
    found = storechart.find_helm()
    if not found:
        unavailable("helm not found: run `hack/controlplane/build.sh helm-kubectl`")
    return found


@pytest.mark.parametrize("profile", storechart.PROFILES)
def test_no_volume_claims_to_outlive_its_store(helm, profile):
    result = storechart.render(helm, profile)
    assert result.returncode == 0, result.stderr
    claims = [doc for doc in storechart.documents(result.stdout)
              if doc["kind"] == "PersistentVolumeClaim"]
    assert len(claims) == 2
    for claim in claims:
        assert "helm.sh/resource-policy" not in (claim["metadata"].get("annotations") or {})


def test_the_chart_refuses_a_keep_on_uninstall_setting(helm):
    result = storechart.render(helm, "local", set_values=["persistence.keepOnUninstall=true"])
    assert result.returncode != 0
    assert "keepOnUninstall" in result.stderr
