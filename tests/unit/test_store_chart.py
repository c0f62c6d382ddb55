"""store-chart/ without a cluster: lint, render, values schema, Pod Security `restricted`,
quota arithmetic, sizing, network flows, hooks, and checkov over the rendered manifests.
(The wp-cli scripts themselves run in test_store_chart_setup.py.)

Needs helm (hack/controlplane/build.sh) and, for the scan, checkov's own virtualenv
(make checkov-venv). Missing tools skip these tests, except under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import storechart
import yaml
from kubernetes import client as k8s_models

from storeplatform import engines, manifests
from storeplatform.lifecycle.jobs import RUNNER_SETTINGS
from tests.conftest import unavailable

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
COMPONENTS = {"store", "wordpress", "mysql", "setup", "cron", "test"}
CONTRACT_SECRET_KEYS = {"admin-user", "admin-email", *engines.get("woocommerce").credential_keys}
FORBIDDEN_POD_FIELDS = ("hostNetwork", "hostPID", "hostIPC")
# Pod Security "restricted": the volume types a pod may use.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}


def _require(tool: Path | None, what: str, how: str) -> Path:
    if tool:
        return tool
    unavailable(f"{what} not found: run `{how}`")


@pytest.fixture(scope="module")
def helm() -> Path:
    return _require(storechart.find_helm(), "helm", "hack/controlplane/build.sh helm-kubectl")


def _render_ok(helm: Path, profile: str, **kwargs: Any) -> list[dict[str, Any]]:
    result = storechart.render(helm, profile, **kwargs)
    assert result.returncode == 0, result.stderr
    return storechart.documents(result.stdout)


@pytest.fixture(scope="module", params=storechart.PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def rendered(helm: Path, profile: str) -> list[dict[str, Any]]:
    return _render_ok(helm, profile)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    """The object of that kind called store-ci-<suffix>."""
    [found] = [doc for doc in by_kind(docs, kind)
               if doc["metadata"]["name"] == f"store-ci-{suffix}"]
    return found


def one(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    found = [doc for doc in by_kind(docs, kind)
             if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    assert len(found) == 1, f"expected one {kind} for {component}, got {len(found)}"
    return found[0]


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(owning object, pod template {metadata, spec}) for every pod the chart can create."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield doc, doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]
        elif doc["kind"] == "Pod":
            yield doc, doc


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


# --- lint and the platform's values ---------------------------------------------------

def test_platform_values_are_what_the_create_function_passes() -> None:
    ci_values = yaml.safe_load(storechart.PLATFORM_VALUES.read_text())
    assert ci_values == manifests.chart_values("store-ci", "woocommerce", None)
    assert ci_values == {"storeName": "store-ci", "engine": "woocommerce",
                         "existingSecret": "store-credentials"}


def test_lint_strict_is_clean(helm: Path, profile: str) -> None:
    result = storechart.lint(helm, profile)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[ERROR]" not in output and "[WARNING]" not in output, output


def test_renders_one_store(rendered: list[dict[str, Any]], profile: str) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    # default-deny, dns, wordpress, mysql, setup, cron, test (+ the ACME solver's).
    policies = 7 + (profile == "production")
    # scripts, test script, Apache, PHP, MySQL, mu-plugins.
    assert kinds == sorted([
        "ServiceAccount", "ResourceQuota", "LimitRange", *["NetworkPolicy"] * policies,
        *["ConfigMap"] * 6, "PersistentVolumeClaim", "PersistentVolumeClaim",
        "Service", "Service", "Deployment", "StatefulSet", "Ingress", "Job", "CronJob", "Pod"])
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in rendered]
    assert len(names) == len(set(names))
    assert all(doc["metadata"]["name"].startswith("store-ci") for doc in rendered)


def _model_class(doc: dict[str, Any]) -> Any:
    version = doc["apiVersion"].split("/")[-1]
    return getattr(k8s_models, f"{version.capitalize()}{doc['kind']}")


def _unknown_fields(value: Any, type_name: str, path: str) -> list[str]:
    """Keys the Kubernetes API schema (as the pinned client models know it) lacks."""
    if type_name.startswith("list["):
        return [problem for i, item in enumerate(value or [])
                for problem in _unknown_fields(item, type_name[5:-1], f"{path}[{i}]")]
    if type_name.startswith("dict(") or not type_name.startswith("V"):
        return []
    model = getattr(k8s_models, type_name)
    json_to_attr = {json_key: attr for attr, json_key in model.attribute_map.items()}
    problems = []
    for key, item in (value or {}).items():
        if key not in json_to_attr:
            problems.append(f"{path}.{key}")
        else:
            problems += _unknown_fields(item, model.openapi_types[json_to_attr[key]],
                                        f"{path}.{key}")
    return problems


def test_every_field_is_known_to_the_kubernetes_api(rendered: list[dict[str, Any]]) -> None:
    """A kubeconform-like structural check against the pinned client's API models."""
    for doc in rendered:
        model = _model_class(doc)
        assert _unknown_fields(doc, model.__name__, doc["kind"]) == []


# --- labels, names, namespace ------------------------------------------------------------

def test_every_object_and_pod_is_labelled(rendered: list[dict[str, Any]]) -> None:
    metas = [doc["metadata"] for doc in rendered]
    metas += [template["metadata"] for _, template in pod_templates(rendered)]
    for meta in metas:
        labels = meta["labels"]
        assert labels["storeplatform.io/store"] == "store-ci"
        assert labels["app.kubernetes.io/instance"] == "store-ci"
        assert labels["app.kubernetes.io/name"] == "store"
        assert labels["app.kubernetes.io/component"] in COMPONENTS
    for doc in rendered:
        assert doc["metadata"]["namespace"] == "store-ci"


def test_selectors_match_their_pods(rendered: list[dict[str, Any]]) -> None:
    for doc in rendered:
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            selector = doc["spec"]["selector"]["matchLabels"]
            assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    pods = [template["metadata"]["labels"] for _, template in pod_templates(rendered)]
    for service in by_kind(rendered, "Service"):
        selector = service["spec"]["selector"]
        assert sum(selector.items() <= labels.items() for labels in pods) == 1


# --- Pod Security "restricted" ---------------------------------------------------------

def test_every_pod_meets_pod_security_restricted(rendered: list[dict[str, Any]]) -> None:
    for owner, template in pod_templates(rendered):
        spec, where = template["spec"], f"{owner['kind']}/{owner['metadata']['name']}"
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, where
        assert pod_sc["runAsUser"] > 0 and pod_sc["runAsGroup"] > 0 and pod_sc["fsGroup"] > 0
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["serviceAccountName"] == "store-ci", where
        assert not any(spec.get(field) for field in FORBIDDEN_POD_FIELDS), where
        for volume in spec.get("volumes", []):
            types = set(volume) - {"name"}
            assert types <= RESTRICTED_VOLUME_TYPES, f"{where}: volume {volume['name']}"
        for container in all_containers(spec):
            sc, what = container["securityContext"], f"{where}/{container['name']}"
            assert sc["allowPrivilegeEscalation"] is False, what
            assert sc["capabilities"] == {"drop": ["ALL"]}, what
            assert sc["runAsNonRoot"] is True and sc.get("privileged") is False, what
            assert sc["readOnlyRootFilesystem"] is True, what
            assert not container.get("ports") or all(
                port["containerPort"] >= 1024 for port in container["ports"]), what
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, what


def test_wordpress_runs_as_www_data_on_8080(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment", "wordpress")
    spec = deployment["spec"]["template"]["spec"]
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["fsGroup"]) == (33, 33)
    container = spec["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["image"].startswith("wordpress:") and container["image"].endswith("-apache")
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/etc/apache2/ports.conf"]["subPath"] == "ports.conf"
    assert "/etc/apache2/sites-enabled" in mounts
    apache = named(rendered, "ConfigMap", "wordpress-apache")["data"]
    assert re.search(r"^Listen 8080$", apache["ports.conf"], re.M)
    assert "<VirtualHost *:8080>" in apache["000-default.conf"]
    assert "startupProbe" in container and "livenessProbe" in container
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    # Readiness must pass before set-up ran (302 to the installer), or `helm --wait`
    # would never reach the post-install hook.
    assert container["readinessProbe"]["httpGet"]["path"] == "/wp-login.php"


def test_mysql_is_a_statefulset_on_its_own_claim(rendered: list[dict[str, Any]]) -> None:
    statefulset = one(rendered, "StatefulSet", "mysql")
    spec = statefulset["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"].startswith("mysql:8.")
    assert spec["securityContext"]["runAsUser"] == 999
    claims = [volume["persistentVolumeClaim"]["claimName"] for volume in spec["volumes"]
              if "persistentVolumeClaim" in volume]
    assert claims == [one(rendered, "PersistentVolumeClaim", "mysql")["metadata"]["name"]]
    service = one(rendered, "Service", "mysql")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]


# --- credentials --------------------------------------------------------------------------

def test_secrets_are_files_from_the_existing_secret(rendered: list[dict[str, Any]]) -> None:
    assert by_kind(rendered, "Secret") == []
    for owner, template in pod_templates(rendered):
        spec = template["spec"]
        for container in all_containers(spec):
            for env in container.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {}), owner["metadata"]["name"]
                assert "PASSWORD=" not in env.get("value", "")
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] == "store-credentials"
                keys = {item["key"] for item in volume["secret"]["items"]}
                assert keys <= CONTRACT_SECRET_KEYS


# --- quota and limits ---------------------------------------------------------------------

def cpu_milli(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def mem_mi(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def pod_request(spec: dict[str, Any], kind: str, resource: str) -> int:
    """What the quota charges a pod: max(sum of containers, largest init container)."""
    parse = cpu_milli if resource == "cpu" else mem_mi
    main = sum(parse(c["resources"][kind][resource]) for c in spec["containers"])
    init = [parse(c["resources"][kind][resource]) for c in spec.get("initContainers", [])]
    return max([main, *init])


def max_pods(owner: dict[str, Any]) -> int:
    if owner["kind"] in ("Pod", "CronJob", "Job"):  # the CronJob: concurrencyPolicy Forbid
        return 1
    if owner["kind"] == "Deployment":
        strategy = owner["spec"]["strategy"]
        surge = strategy.get("rollingUpdate", {}).get("maxSurge", 0)
        return owner["spec"]["replicas"] + (surge if strategy["type"] == "RollingUpdate" else 0)
    return owner["spec"].get("replicas", 1)


def test_quota_admits_every_pod_of_the_chart(rendered: list[dict[str, Any]],
                                             profile: str) -> None:
    """Every pod the chart can run at once, plus the headroom: a second WordPress pod
    (an evicted pod's replacement starts while the old one terminates; a one-off backup
    or debug pod) and, with HTTP-01, cert-manager's solver pod."""
    hard = by_kind(rendered, "ResourceQuota")[0]["spec"]["hard"]
    pods = list(pod_templates(rendered))
    wordpress = one(rendered, "Deployment", "wordpress")
    pods.append(({"kind": "Pod"}, wordpress["spec"]["template"]))
    if profile == "production":
        solver = storechart.acme_solver_pod("store-ci")
        pods.append((solver, solver))
        assert hard["services"] == "3"  # + the solver's ClusterIP Service
    assert sum(max_pods(owner) for owner, _ in pods) == int(hard["pods"])
    for kind in ("requests", "limits"):
        cpu = sum(max_pods(o) * pod_request(t["spec"], kind, "cpu") for o, t in pods)
        memory = sum(max_pods(o) * pod_request(t["spec"], kind, "memory") for o, t in pods)
        assert cpu <= cpu_milli(hard[f"{kind}.cpu"]), kind
        assert memory <= mem_mi(hard[f"{kind}.memory"]), kind
    claims = by_kind(rendered, "PersistentVolumeClaim")
    assert len(claims) <= int(hard["persistentvolumeclaims"])
    assert sum(mem_mi(c["spec"]["resources"]["requests"]["storage"]) for c in claims) <= mem_mi(
        hard["requests.storage"])
    assert hard["services.loadbalancers"] == "0" and hard["services.nodeports"] == "0"


def test_limit_range_admits_every_container(rendered: list[dict[str, Any]]) -> None:
    limits = {item["type"]: item for item in by_kind(rendered, "LimitRange")[0]["spec"]["limits"]}
    biggest = limits["Container"]["max"]
    for _, template in pod_templates(rendered):
        for container in all_containers(template["spec"]):
            for kind in ("requests", "limits"):
                res = container["resources"][kind]
                assert cpu_milli(res["cpu"]) <= cpu_milli(biggest["cpu"])
                assert mem_mi(res["memory"]) <= mem_mi(biggest["memory"])
    for claim in by_kind(rendered, "PersistentVolumeClaim"):
        assert mem_mi(claim["spec"]["resources"]["requests"]["storage"]) <= mem_mi(
            limits["PersistentVolumeClaim"]["max"]["storage"])


# --- network policies --------------------------------------------------------------------

def policy(rendered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [doc for doc in by_kind(rendered, "NetworkPolicy")
             if doc["metadata"]["name"] == f"store-ci-{name}"]
    assert len(found) == 1, name
    return found[0]["spec"]


def peer_components(rule: dict[str, Any], key: str) -> set[str]:
    return {peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component", "")
            for peer in rule[key] if "podSelector" in peer and "namespaceSelector" not in peer}


def test_network_is_denied_by_default(rendered: list[dict[str, Any]]) -> None:
    assert policy(rendered, "default-deny") == {"podSelector": {},
                                                "policyTypes": ["Ingress", "Egress"]}


def test_dns_only_to_the_cluster_dns(rendered: list[dict[str, Any]]) -> None:
    dns = policy(rendered, "dns")
    assert dns["policyTypes"] == ["Egress"]
    [rule] = dns["egress"]
    [peer] = rule["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"}
    assert {p["port"] for p in rule["ports"]} == {53}


def test_wordpress_flows(rendered: list[dict[str, Any]], profile: str) -> None:
    wordpress = policy(rendered, "wordpress")
    [inbound] = wordpress["ingress"]
    assert inbound["ports"] == [{"protocol": "TCP", "port": 8080}]
    controller = [peer for peer in inbound["from"] if "namespaceSelector" in peer]
    assert controller[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"}
    assert peer_components(inbound, "from") == {"test"}
    [to_mysql] = wordpress["egress"]  # no internet egress in either profile
    assert peer_components(to_mysql, "to") == {"mysql"}
    assert to_mysql["ports"] == [{"protocol": "TCP", "port": 3306}]


def test_mysql_accepts_only_the_pods_that_run_wordpress(rendered: list[dict[str, Any]]) -> None:
    mysql = policy(rendered, "mysql")
    [inbound] = mysql["ingress"]
    assert peer_components(inbound, "from") == {"wordpress", "setup", "cron"}
    assert inbound["ports"] == [{"protocol": "TCP", "port": 3306}]
    assert mysql["egress"] == []


def test_setup_reaches_mysql_and_only_public_https(rendered: list[dict[str, Any]]) -> None:
    setup = policy(rendered, "setup")
    to_mysql, internet = setup["egress"]
    assert peer_components(to_mysql, "to") == {"mysql"}
    assert internet["ports"] == [{"protocol": "TCP", "port": 443}]
    block = internet["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0"
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
    assert private <= set(block["except"])
    assert setup["ingress"] == []


def test_every_pod_has_its_own_policy(rendered: list[dict[str, Any]]) -> None:
    selectors = [doc["spec"]["podSelector"].get("matchLabels", {})
                 for doc in by_kind(rendered, "NetworkPolicy")
                 if doc["spec"]["podSelector"].get("matchLabels", {}).get(
                     "app.kubernetes.io/component")]
    for _, template in pod_templates(rendered):
        labels = template["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in selectors), labels


# --- ingress -------------------------------------------------------------------------------

def test_ingress_host_and_tls(rendered: list[dict[str, Any]], profile: str) -> None:
    ingress = one(rendered, "Ingress", "wordpress")
    rule = ingress["spec"]["rules"][0]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert rule["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "http"}
    if profile == "local":
        assert rule["host"] == "store-ci.localhost"
        assert "tls" not in ingress["spec"]
    else:
        assert rule["host"] == "store-ci.stores.example.com"
        assert ingress["spec"]["tls"] == [{"hosts": [rule["host"]], "secretName": "store-ci-tls"}]
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]


def test_base_domain_from_the_platform(helm: Path, tmp_path: Path) -> None:
    extra = tmp_path / "platform.yaml"
    extra.write_text(yaml.safe_dump(manifests.chart_values("store-ci", "woocommerce", "shop.test")))
    docs = _render_ok(helm, "local", extra_files=[extra])
    assert one(docs, "Ingress", "wordpress")["spec"]["rules"][0]["host"] == "store-ci.shop.test"
    env = one(docs, "Job", "setup")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "STORE_URL", "value": "http://store-ci.shop.test"} in env


# --- first-boot set-up and helm test ------------------------------------------------------

def test_setup_is_a_post_install_and_post_upgrade_hook(rendered: list[dict[str, Any]]) -> None:
    job = one(rendered, "Job", "setup")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["image"].startswith("wordpress:cli-")
    assert spec["initContainers"][0]["image"] == one(
        rendered, "Deployment", "wordpress")["spec"]["template"]["spec"]["containers"][0]["image"]
    env = {item["name"]: item.get("value") for item in spec["containers"][0]["env"]}
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["WC_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["STOREFRONT_VERSION"])
    script = named(rendered, "ConfigMap", "setup")["data"]["setup.sh"]
    # First boot behind the marker; upgrades migrate; nothing forced over a live site.
    for step in ("storeplatform_setup_completed", "wp core update-db", "wp wc update",
                 'wp plugin update "$1" --version="$2"', "install_pages", "ensure_checkout_probe"):
        assert step in script, step
    assert "--force" not in script


def test_helm_test_checks_out_with_cash_on_delivery(rendered: list[dict[str, Any]]) -> None:
    pod = by_kind(rendered, "Pod")[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
    env = {item["name"]: item["value"] for item in pod["spec"]["containers"][0]["env"]}
    assert env["STOREFRONT"] == "http://store-ci-wordpress"
    script = one(rendered, "ConfigMap", "test")["data"]["checkout-test.sh"]
    for step in ("/cart/add-item", "/checkout", '\\"payment_method\\": \\"cod\\"', "Cart-Token",
                 "Nonce", "/order/"):
        assert step in script, step


class FakeStoreApi(BaseHTTPRequestHandler):
    """The WooCommerce Store API routes the checkout test uses, strict about what real
    WooCommerce requires: the Host, a Cart-Token (or Nonce) on writes, COD, addresses."""

    orders: ClassVar[dict[int, dict[str, Any]]] = {}
    carts: ClassVar[dict[str, list[int]]] = {}
    payment_methods: ClassVar[list[str]] = ["cod"]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        assert self.headers["Host"] == "store-ci.localhost", self.headers["Host"]
        prefix = "/wp-json/wc/store/v1"
        assert url.path.startswith(prefix), url.path
        return url.path[len(prefix):], parse_qs(url.query)

    def do_GET(self) -> None:
        path, query = self._route()
        if path == "/products":
            # Hidden products are listed only with catalog_visibility=any|hidden.
            assert query["catalog_visibility"] == ["any"], query
            found = [{"id": 15, "name": "Checkout test", "type": "simple"}] if query.get(
                "sku") == ["STOREPLATFORM-CHECKOUT-PROBE"] else []
            self._answer(200, found)
        elif path == "/cart":
            token = f"token-{len(self.carts)}"
            self.carts[token] = []
            self._answer(200, {"items_count": 0}, {"Cart-Token": token, "Nonce": "n0nce"})
        elif path.startswith("/order/"):
            order = self.orders.get(int(path.rsplit("/", 1)[1]))
            if not order or query.get("key") != [order["order_key"]] or query.get(
                    "billing_email") != [order["billing_address"]["email"]]:
                self._answer(401, {"code": "woocommerce_rest_invalid_user"})
            else:
                self._answer(200, {"id": order["order_id"], "status": order["status"]})
        else:
            self._answer(404, {"code": "rest_no_route"})

    def do_POST(self) -> None:
        path, _ = self._route()
        token = self.headers.get("Cart-Token", "")
        assert token in self.carts and self.headers.get("Nonce") == "n0nce"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if path == "/cart/add-item":
            self.carts[token].append(body["id"])
            self._answer(201, {"items_count": len(self.carts[token]),
                               "payment_methods": self.payment_methods,
                               "totals": {"total_price": "100", "currency_code": "USD"}})
        elif path == "/checkout":
            assert self.carts[token], "checkout with an empty cart"
            assert body["payment_method"] == "cod"
            for field in ("first_name", "last_name", "address_1", "city", "postcode", "country",
                          "email"):
                assert body["billing_address"][field], field
            assert body["payment_method"] in self.payment_methods
            order = {"order_id": 100 + len(self.orders), "order_key": "wc_order_abc",
                     "customer_note": body.get("customer_note", ""),
                     "status": "processing", "billing_address": body["billing_address"],
                     "payment_result": {"payment_status": "success"}}
            self.orders[order["order_id"]] = order
            self._answer(200, order)
        else:
            self._answer(404, {"code": "rest_no_route"})


def run_checkout_script(tmp_path: Path, payment_methods: list[str]) -> tuple[
        subprocess.CompletedProcess[str], Path]:
    """files/woocommerce/checkout-test.sh, with the test pod's env, against a fake
    Store API on 127.0.0.1."""
    if not shutil.which("curl"):
        unavailable("curl is not installed (apt-get install curl)")
    FakeStoreApi.orders, FakeStoreApi.carts = {}, {}
    FakeStoreApi.payment_methods = payment_methods
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStoreApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    order_file = tmp_path / "order-id"
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path),
           "STOREFRONT": f"http://127.0.0.1:{server.server_port}",
           "STORE_HOST": "store-ci.localhost", "PRODUCT_SKU": "STOREPLATFORM-CHECKOUT-PROBE",
           "BILLING_EMAIL": "checkout-test@storeplatform.invalid",
           "ORDER_NOTE": "storeplatform-checkout-test", "ORDER_ID_FILE": str(order_file)}
    try:
        result = subprocess.run(
            ["sh", str(storechart.CHART_DIR / "files" / "woocommerce" / "checkout-test.sh")],
            capture_output=True, text=True, check=False, timeout=60, env=env)
    finally:
        server.shutdown()
        server.server_close()
    return result, order_file


def test_checkout_script_buys_the_probe_through_the_store_api(tmp_path: Path) -> None:
    result, order_file = run_checkout_script(tmp_path, ["cod", "bacs"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "order 100 exists with status processing" in result.stdout
    assert order_file.read_text().strip() == "100"
    # Marked, so the scheduled job deletes it and it never counts as a sale.
    assert FakeStoreApi.orders[100]["customer_note"] == "storeplatform-checkout-test"


def test_checkout_script_places_no_order_when_the_owner_turned_cod_off(tmp_path: Path) -> None:
    result, order_file = run_checkout_script(tmp_path, ["stripe"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cash on delivery is off" in result.stdout
    assert FakeStoreApi.orders == {} and not order_file.exists()


def test_chart_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        unavailable("shellcheck is not installed (apt-get install shellcheck)")
    scripts = sorted((storechart.CHART_DIR / "files").rglob("*.sh"))
    scripts.append(storechart.REPO_ROOT / "hack" / "e2e-real-cluster.sh")
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stdout


# --- profiles ------------------------------------------------------------------------------

def test_production_pulls_images_always(helm: Path) -> None:
    docs = _render_ok(helm, "production")
    for _, template in pod_templates(docs):
        for container in all_containers(template["spec"]):
            assert container["imagePullPolicy"] == "Always", container["name"]


def test_replicas_need_shared_wp_content(helm: Path) -> None:
    docs = _render_ok(helm, "production", set_values=[
        "persistence.wpContent.accessMode=ReadWriteMany", "wordpress.replicas=2"])
    deployment = one(docs, "Deployment", "wordpress")
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "affinity" not in one(docs, "Job", "setup")["spec"]["template"]["spec"]
    # 2 replicas + 1 surge + 1 spare; MySQL, set-up, scheduled job, test, ACME solver.
    assert int(by_kind(docs, "ResourceQuota")[0]["spec"]["hard"]["pods"]) == 2 + 1 + 1 + 5


def test_image_digest_pins_the_image(helm: Path) -> None:
    digest = "sha256:" + "a" * 64
    docs = _render_ok(helm, "local", set_values=[f"mysql.image.digest={digest}"])
    image = one(docs, "StatefulSet", "mysql")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@" + digest)


def test_notes_give_the_url_and_how_to_read_the_password(helm: Path) -> None:
    result = storechart.run_helm(helm, [
        "install", "store-ci", str(storechart.CHART_DIR), "--namespace", "store-ci",
        "--dry-run=client", *storechart.values_args("production")])
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "https://store-ci.stores.example.com/" in notes
    assert ("kubectl -n store-ci get secret store-credentials "
            "-o jsonpath='{.data.admin-password}' | base64 -d") in notes


# --- sizing: the numbers fit the limits -------------------------------------------------

def ini(text: str, separator: str = "=") -> dict[str, str]:
    """key -> value of an ini/cnf file (comments and sections dropped)."""
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition(separator)
        pairs[key.strip()] = value.strip()
    return pairs


def megabytes(value: str) -> int:
    units = {"K": 1 / 1024, "M": 1, "G": 1024}
    return int(float(value[:-1]) * units[value[-1]]) if value[-1] in units else int(value)


def container(owner: dict[str, Any], name: str) -> dict[str, Any]:
    template = next(t for o, t in pod_templates([owner]))
    return next(c for c in all_containers(template["spec"]) if c["name"] == name)


def worst_case(docs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Re-derive, from the rendered config files alone, what WordPress and MySQL use when
    every worker and every connection is busy (the model in _sizing.tpl), next to the
    containers' memory limits."""
    apache = named(docs, "ConfigMap", "wordpress-apache")["data"]["zz-storeplatform.conf"]
    workers = int(re.search(r"MaxRequestWorkers (\d+)", apache).group(1))
    assert int(re.search(r"ServerLimit (\d+)", apache).group(1)) == workers
    admin_limit = megabytes(re.search(r"php_admin_value memory_limit (\S+)", apache).group(1))
    php = ini(named(docs, "ConfigMap", "php")["data"]["wordpress.ini"])
    php_limit, opcache = megabytes(php["memory_limit"]), int(php["opcache.memory_consumption"])
    assert admin_limit == php_limit
    wordpress = one(docs, "Deployment", "wordpress")
    env = {e["name"]: e.get("value", "") for e in container(wordpress, "wordpress")["env"]}
    wp_config = env["WORDPRESS_CONFIG_EXTRA"]
    for constant in ("WP_MEMORY_LIMIT", "WP_MAX_MEMORY_LIMIT"):  # admin cannot raise it
        assert f"define('{constant}', '{php_limit}M');" in wp_config
    mysql_cnf = ini(named(docs, "ConfigMap", "mysql")["data"]["storeplatform.cnf"])
    mysql = one(docs, "StatefulSet", "mysql")
    per_connection = sum(megabytes(mysql_cnf[k]) if mysql_cnf[k][-1] != "K" else int(
        mysql_cnf[k][:-1]) / 1024 for k in ("sort_buffer_size", "join_buffer_size",
                                             "read_buffer_size", "read_rnd_buffer_size"))
    per_connection += 1 + 2  # thread stack, network and packet buffers
    connections = int(mysql_cnf["max_connections"])
    replicas = wordpress["spec"]["replicas"] + (
        wordpress["spec"]["strategy"]["type"] == "RollingUpdate")
    assert connections >= workers * replicas + 10  # one per Apache worker, and wp-cli
    performance_schema = 256 if mysql_cnf["performance_schema"] == "ON" else 0
    return {
        "wordpress": {
            "workers": workers,
            "used": workers * (php_limit + 24) + opcache + 64,
            "limit": mem_mi(container(wordpress, "wordpress")["resources"]["limits"]["memory"])},
        "mysql": {
            "connections": connections,
            "used": round(megabytes(mysql_cnf["innodb_buffer_pool_size"])
                          + megabytes(mysql_cnf["temptable_max_ram"])
                          + megabytes(mysql_cnf["innodb_log_buffer_size"])
                          + megabytes(mysql_cnf["key_buffer_size"]) + 128 + performance_schema
                          + connections * per_connection),
            "limit": mem_mi(container(mysql, "mysql")["resources"]["limits"]["memory"]) * 9 // 10},
    }


SIZING_SCENARIOS = {
    "local": ("local", []),
    "production": ("production", []),
    "production-3-replicas-rwx": ("production", [
        "persistence.wpContent.accessMode=ReadWriteMany", "wordpress.replicas=3"]),
    "production-performance-schema": ("production", ["mysql.performanceSchema=true"]),
}


@pytest.mark.parametrize("scenario", SIZING_SCENARIOS)
def test_sizing_fits_the_memory_limits(helm: Path, scenario: str) -> None:
    profile, overrides = SIZING_SCENARIOS[scenario]
    numbers = worst_case(_render_ok(helm, profile, set_values=overrides))
    for part in ("wordpress", "mysql"):
        assert 0 < numbers[part]["used"] <= numbers[part]["limit"], (scenario, numbers)
    assert numbers["wordpress"]["workers"] >= 2


def test_sizing_per_profile(helm: Path) -> None:
    """The numbers docs/store-chart.md quotes."""
    local, production = (worst_case(_render_ok(helm, p)) for p in storechart.PROFILES)
    assert (local["wordpress"]["workers"], local["mysql"]["connections"]) == (4, 14)
    assert (production["wordpress"]["workers"], production["mysql"]["connections"]) == (6, 16)
    assert (local["wordpress"]["used"], production["wordpress"]["used"]) == (736, 1872)


def test_wp_cli_memory_fits_its_containers(rendered: list[dict[str, Any]]) -> None:
    php = named(rendered, "ConfigMap", "php")["data"]
    for owner, name in ((one(rendered, "Job", "setup"), "setup"),
                        (one(rendered, "CronJob", "cron"), "cron")):
        limit = mem_mi(container(owner, name)["resources"]["limits"]["memory"])
        assert megabytes(ini(php[f"{name}.ini"])["memory_limit"]) + 96 <= limit
        mounts = {m["mountPath"]: m for m in container(owner, name)["volumeMounts"]}
        assert mounts["/usr/local/etc/php/conf.d/zz-storeplatform.ini"]["subPath"] == f"{name}.ini"


def test_uploads_fit_through_the_ingress(rendered: list[dict[str, Any]], profile: str) -> None:
    php = ini(named(rendered, "ConfigMap", "php")["data"]["wordpress.ini"])
    body = one(rendered, "Ingress", "wordpress")["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-body-size"]
    upload, post = megabytes(php["upload_max_filesize"]), megabytes(php["post_max_size"])
    assert upload == {"local": 16, "production": 32}[profile]
    assert upload < post <= megabytes(body.upper())


# --- scheduled work ------------------------------------------------------------------------

def test_wp_cron_is_off_on_page_visits_everywhere(rendered: list[dict[str, Any]]) -> None:
    for _, template in pod_templates(rendered):
        for item in all_containers(template["spec"]):
            env = {e["name"]: e.get("value", "") for e in item.get("env", [])}
            if "WORDPRESS_CONFIG_EXTRA" in env:
                assert "define('DISABLE_WP_CRON', true);" in env["WORDPRESS_CONFIG_EXTRA"]


def test_the_scheduled_job_runs_wp_cli_under_the_same_rules(rendered: list[dict[str, Any]],
                                                            profile: str) -> None:
    cron = one(rendered, "CronJob", "cron")
    spec = cron["spec"]
    assert spec["schedule"] == "*/5 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] < 5 * 60  # done before the next slot
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    main = container(cron, "cron")
    assert main["command"] == ["/bin/sh", "/scripts/cron.sh"]
    assert main["image"] == container(one(rendered, "Job", "setup"), "setup")["image"]
    # Same WordPress core as the storefront, on the node that holds wp-content (RWO).
    assert pod["initContainers"][0]["image"].startswith("wordpress:")
    assert "podAffinity" in pod["affinity"]
    keys = {item["key"] for v in pod["volumes"] if "secret" in v for item in v["secret"]["items"]}
    assert "admin-password" not in keys and "mysql-root-password" not in keys
    cron_policy = policy(rendered, "cron")
    assert cron_policy["ingress"] == []
    assert [peer_components(rule, "to") for rule in cron_policy["egress"]] == [{"mysql"}]


def test_mu_plugin_is_mounted_read_only_wherever_wordpress_runs(
        rendered: list[dict[str, Any]]) -> None:
    for owner in (one(rendered, "Deployment", "wordpress"), one(rendered, "Job", "setup"),
                  one(rendered, "CronJob", "cron")):
        name = owner["metadata"]["labels"]["app.kubernetes.io/component"]
        mounts = {m["mountPath"]: m for m in container(owner, name)["volumeMounts"]}
        assert mounts["/var/www/html/wp-content/mu-plugins"]["readOnly"] is True
    plugin = named(rendered, "ConfigMap", "mu-plugins")["data"]["storeplatform.php"]
    for hook in ("wp_mail_failed", "pre_wp_mail", "phpmailer_init",
                 "action_scheduler_allow_async_request_runner"):
        assert hook in plugin, hook


# --- TLS: cert-manager's HTTP-01 solver under default-deny ------------------------------

def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items()


def ingress_allowed(docs: list[dict[str, Any]], pod_labels: dict[str, str],
                    ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(peer, ports) every NetworkPolicy selecting the pod admits; default-deny (no
    rules) admits nothing. Namespace policies are additive, as in Kubernetes."""
    allowed = []
    for doc in by_kind(docs, "NetworkPolicy"):
        spec = doc["spec"]
        if "Ingress" in spec["policyTypes"] and selects(spec["podSelector"], pod_labels):
            for rule in spec.get("ingress", []):
                allowed += [(peer, rule.get("ports", [])) for peer in rule.get("from", [])]
    return allowed


def egress_allowed(docs: list[dict[str, Any]], pod_labels: dict[str, str]) -> list[Any]:
    return [rule for doc in by_kind(docs, "NetworkPolicy")
            if "Egress" in doc["spec"]["policyTypes"]
            and selects(doc["spec"]["podSelector"], pod_labels)
            for rule in doc["spec"].get("egress", [])]


def test_the_acme_solver_is_admitted_from_the_ingress_controller_only(helm: Path) -> None:
    docs = _render_ok(helm, "production")
    solver = storechart.acme_solver_pod("store-ci")
    allowed = ingress_allowed(docs, solver["metadata"]["labels"])
    controller = {"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": "ingress-nginx"}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}}
    assert allowed == [(controller, [{"protocol": "TCP", "port": 8089}])]
    assert egress_allowed(docs, solver["metadata"]["labels"]) == []  # not even DNS
    # The solver listens where the policy opens (cert-manager's acmeSolverListenPort).
    assert solver["spec"]["containers"][0]["ports"][0]["containerPort"] == 8089
    # The policy selects no pod of the store itself, and opens nothing new for them.
    for _, template in pod_templates(docs):
        labels = template["metadata"]["labels"]
        assert not selects(policy(docs, "acme-http01-solver")["podSelector"], labels)
        assert all(port["port"] != 8089 for _, ports in ingress_allowed(docs, labels)
                   for port in ports)


def test_no_solver_policy_without_http01(rendered: list[dict[str, Any]], profile: str) -> None:
    names = {doc["metadata"]["name"] for doc in by_kind(rendered, "NetworkPolicy")}
    assert ("store-ci-acme-http01-solver" in names) == (profile == "production")


def test_a_pre_made_certificate_needs_no_solver(helm: Path) -> None:
    docs = _render_ok(helm, "production", set_values=[
        "ingress.tls.clusterIssuer=", "ingress.tls.acmeHttp01=false",
        "ingress.tls.secretName=stores-wildcard-tls"])
    ingress = one(docs, "Ingress", "wordpress")
    assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"][0]["secretName"] == "stores-wildcard-tls"
    assert "store-ci-acme-http01-solver" not in {d["metadata"]["name"] for d in docs}
    assert by_kind(docs, "ResourceQuota")[0]["spec"]["hard"]["services"] == "2"


# --- outbound HTTP, mail, MySQL ---------------------------------------------------------

def wp_config(owner: dict[str, Any], name: str) -> str:
    env = {e["name"]: e.get("value", "") for e in container(owner, name)["env"]}
    return env["WORDPRESS_CONFIG_EXTRA"]


def test_blocked_outbound_http_fails_fast_except_for_the_set_up(
        rendered: list[dict[str, Any]]) -> None:
    block = "define('WP_HTTP_BLOCK_EXTERNAL', true);"
    assert block in wp_config(one(rendered, "Deployment", "wordpress"), "wordpress")
    assert block in wp_config(one(rendered, "CronJob", "cron"), "cron")
    # The set-up downloads the pinned WooCommerce and Storefront.
    assert block not in wp_config(one(rendered, "Job", "setup"), "setup")


def test_allowed_hosts_open_exactly_those(helm: Path) -> None:
    docs = _render_ok(helm, "production", set_values=[
        "networkPolicy.internetEgress.wordpress=true",
        "wordpress.allowedHosts={api.stripe.com,hooks.example.com}"])
    config = wp_config(one(docs, "Deployment", "wordpress"), "wordpress")
    assert "define('WP_ACCESSIBLE_HOSTS', 'api.stripe.com,hooks.example.com');" in config
    assert "define('WP_HTTP_BLOCK_EXTERNAL', true);" in config
    open_egress = _render_ok(helm, "production", set_values=[
        "networkPolicy.internetEgress.wordpress=true"])
    assert "WP_HTTP_BLOCK_EXTERNAL" not in wp_config(
        one(open_egress, "Deployment", "wordpress"), "wordpress")


def test_mail_is_off_by_default(rendered: list[dict[str, Any]]) -> None:
    wordpress = one(rendered, "Deployment", "wordpress")
    env = {e["name"]: e.get("value") for e in container(wordpress, "wordpress")["env"]}
    assert env["STOREPLATFORM_MAIL_ENABLED"] == "0"
    assert not any(name.startswith("STOREPLATFORM_SMTP") for name in env)
    assert all(v["name"] != "smtp" for v in wordpress["spec"]["template"]["spec"]["volumes"])


def test_mail_through_a_relay_with_a_secret(helm: Path) -> None:
    docs = _render_ok(helm, "production", set_values=[
        "mail.enabled=true", "mail.host=smtp.example.com", "mail.existingSecret=store-smtp",
        "mail.fromAddress=shop@example.com"])
    for owner, name in ((one(docs, "Deployment", "wordpress"), "wordpress"),
                        (one(docs, "CronJob", "cron"), "cron")):
        env = {e["name"]: e.get("value") for e in container(owner, name)["env"]}
        assert (env["STOREPLATFORM_SMTP_HOST"], env["STOREPLATFORM_SMTP_PORT"]) == (
            "smtp.example.com", "587")
        assert env["STOREPLATFORM_SMTP_SECRET_DIR"] == "/run/secrets/smtp"
        template = next(t for _, t in pod_templates([owner]))
        [smtp] = [v for v in template["spec"]["volumes"] if v["name"] == "smtp"]
        assert smtp["secret"]["secretName"] == "store-smtp"
        rules = policy(docs, name)["egress"]
        assert {"protocol": "TCP", "port": 587} in [p for r in rules for p in r["ports"]]
    setup = one(docs, "Job", "setup")
    assert all(v["name"] != "smtp" for v in setup["spec"]["template"]["spec"]["volumes"])


def test_mysql_root_only_from_inside_its_pod(rendered: list[dict[str, Any]]) -> None:
    env = {e["name"]: e.get("value") for e in container(
        one(rendered, "StatefulSet", "mysql"), "mysql")["env"]}
    assert env["MYSQL_ROOT_HOST"] == "localhost"


def test_binary_log_is_off_or_expires(helm: Path, rendered: list[dict[str, Any]]) -> None:
    assert "skip-log-bin" in named(rendered, "ConfigMap", "mysql")["data"]["storeplatform.cnf"]
    docs = _render_ok(helm, "local", set_values=["mysql.binaryLog.enabled=true"])
    cnf = named(docs, "ConfigMap", "mysql")["data"]["storeplatform.cnf"]
    assert "skip-log-bin" not in cnf
    assert ini(cnf)["binlog_expire_logs_seconds"] == "259200"


# --- timeouts: Helm gives up after the hook, never before --------------------------------

def seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def test_the_hooks_finish_within_helms_timeout(rendered: list[dict[str, Any]]) -> None:
    """Helm waits --timeout for each hook. The runner's HELM_TIMEOUT must outlast the
    set-up Job's deadline (retries included) and the test pod's, so a failing hook
    fails with its own reason instead of being abandoned while it still runs."""
    helm_timeout = seconds(RUNNER_SETTINGS["HELM_TIMEOUT"])
    setup = one(rendered, "Job", "setup")["spec"]["activeDeadlineSeconds"]
    test_pod = by_kind(rendered, "Pod")[0]["spec"]["activeDeadlineSeconds"]
    assert setup + 60 <= helm_timeout
    assert test_pod + 60 <= helm_timeout


# --- the runner may manage what the chart renders -----------------------------------

def plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def test_the_runners_role_covers_every_kind_the_chart_renders(
        rendered: list[dict[str, Any]]) -> None:
    """helm runs as storeplatform-runner (knative/210-rbac.yaml): a kind the chart adds
    without a rule there fails every create with 403."""
    manifests = yaml.safe_load_all((storechart.REPO_ROOT / "knative" / "210-rbac.yaml").read_text())
    [role] = [m for m in manifests if m and m["kind"] == "ClusterRole"
              and m["metadata"]["name"] == "storeplatform-runner"]
    allowed = {(group, resource) for rule in role["rules"]
               if {"create", "patch", "delete"} <= set(rule["verbs"])
               for group in rule["apiGroups"] for resource in rule["resources"]}
    for doc in rendered:
        group = doc["apiVersion"].rpartition("/")[0]
        assert (group, plural(doc["kind"])) in allowed, doc["kind"]


# --- values that must be refused ------------------------------------------------------------

BAD_VALUES = [
    pytest.param({"storeName": "shop-a"}, "storeName", id="name-without-prefix"),
    pytest.param({"storeName": "store-UPPER"}, "storeName", id="name-uppercase"),
    pytest.param({"storeName": "store-" + "a" * 35}, "storeName", id="name-41-chars"),
    pytest.param({"storeName": "store-a-"}, "storeName", id="name-trailing-dash"),
    pytest.param({"colour": "blue"}, "colour", id="unknown-top-level-key"),
    pytest.param({"wordpress": {"replica": 2}}, "replica", id="unknown-nested-key"),
    pytest.param({"existingSecret": None}, "existingSecret", id="missing-existing-secret"),
    pytest.param({"existingSecret": ""}, "existingSecret", id="empty-existing-secret"),
    pytest.param({"engine": "shopify"}, "engine", id="unknown-engine"),
    pytest.param({"engine": "medusa"}, "not available yet", id="medusa-reserved"),
    pytest.param({"wordpress": {"replicas": 2}}, "ReadWriteMany", id="replicas-on-rwo"),
    pytest.param({"wordpress": {"image": {"tag": "latest"}}}, "tag", id="latest-tag"),
    pytest.param({"wordpress": {"resources": {"limits": {"cpu": "8"}}}}, "limitRange.max.cpu",
                 id="container-above-limit-range"),
    pytest.param({"mysql": {"resources": {"requests": {"memory": "1Gb"}}}}, "memory",
                 id="bad-memory-unit"),
    pytest.param({"ingress": {"baseDomain": "Bad_Domain"}}, "baseDomain", id="bad-base-domain"),
    pytest.param({"persistence": {"mysql": {"size": "500Gi"}}}, "limitRange.maxStorage",
                 id="claim-above-limit-range"),
    pytest.param({"wordpress": {"resources": {"limits": {"memory": "256Mi"}}}},
                 "at least 2 are needed", id="too-little-memory-for-two-workers"),
    pytest.param({"mysql": {"resources": {"limits": {"memory": "256Mi"}}}},
                 "mysql.resources.limits.memory 256Mi is too small", id="mysql-too-small"),
    pytest.param({"wordpress": {"allowedHosts": ["api.stripe.com"]}},
                 "needs networkPolicy.internetEgress.wordpress", id="allowed-hosts-no-egress"),
    pytest.param({"mail": {"enabled": True}}, "mail.enabled needs mail.host", id="mail-no-host"),
    pytest.param({"ingress": {"annotations": {"nginx.ingress.kubernetes.io/proxy-body-size":
                                              "1g"}}},
                 "follows from wordpress.php.uploadMaxSize", id="body-size-set-twice"),
    pytest.param({"ingress": {"tls": {"acmeHttp01": True}}}, "acmeHttp01 needs",
                 id="http01-without-issuer"),
    pytest.param({"cron": {"schedule": "every five minutes"}}, "schedule", id="bad-schedule"),
    pytest.param({"mail": {"encryption": "starttls"}}, "encryption", id="bad-encryption"),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES)
def test_bad_values_are_refused(helm: Path, tmp_path: Path, override: dict[str, Any],
                                message: str) -> None:
    extra = tmp_path / "bad.yaml"
    extra.write_text(yaml.safe_dump(override))
    namespace = override.get("storeName") or "store-ci"
    result = storechart.render(helm, "local", namespace=namespace.lower()[:63].rstrip("-"),
                               extra_files=[extra])
    assert result.returncode != 0, "rendered although the values are invalid"
    assert message in result.stderr, result.stderr


def test_namespace_must_be_the_store(helm: Path) -> None:
    result = storechart.render(helm, "local", namespace="default")
    assert result.returncode != 0
    assert 'namespace "default" must equal storeName "store-ci"' in result.stderr


def test_no_default_password_without_platform_values(helm: Path) -> None:
    result = storechart.run_helm(helm, ["template", "store-x", str(storechart.CHART_DIR),
                                        "--namespace", "store-x", "--values",
                                        str(storechart.profile_values("local")),
                                        "--set", "storeName=store-x"])
    assert result.returncode != 0
    assert "existingSecret" in result.stderr


# --- checkov -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkov_bin() -> Path:
    return _require(storechart.find_checkov(), "checkov", "make checkov-venv")


def test_checkov_finds_nothing_beyond_documented_skips(helm: Path, checkov_bin: Path,
                                                       profile: str, tmp_path: Path) -> None:
    result = storechart.render(helm, profile)
    assert result.returncode == 0, result.stderr
    (tmp_path / "store.yaml").write_text(result.stdout)
    summary = storechart.checkov(checkov_bin, tmp_path)
    assert summary["failed_checks"] == []
    assert summary["passed"] > 300
    assert summary["skipped"] == 2  # the test pod's probe checks, by annotation
