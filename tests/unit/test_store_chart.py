"""store-chart/ without a cluster: lint, render, values schema, Pod Security `restricted`,
quota arithmetic, network flows, hooks, and checkov over the rendered manifests.

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
from tests.conftest import unavailable

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
COMPONENTS = {"store", "wordpress", "mysql", "setup", "test"}
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


def test_renders_one_store(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == sorted([
        "ServiceAccount", "ResourceQuota", "LimitRange", "NetworkPolicy", "NetworkPolicy",
        "NetworkPolicy", "NetworkPolicy", "NetworkPolicy", "NetworkPolicy",
        "ConfigMap", "ConfigMap", "ConfigMap", "PersistentVolumeClaim", "PersistentVolumeClaim",
        "Service", "Service", "Deployment", "StatefulSet", "Ingress", "Job", "Pod"])
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
    apache = one(rendered, "ConfigMap", "wordpress")["data"]
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
    if owner["kind"] == "Deployment":
        strategy = owner["spec"]["strategy"]
        surge = strategy.get("rollingUpdate", {}).get("maxSurge", 0)
        return owner["spec"]["replicas"] + (surge if strategy["type"] == "RollingUpdate" else 0)
    return owner["spec"].get("replicas", 1)


def test_quota_admits_every_pod_of_the_chart(rendered: list[dict[str, Any]]) -> None:
    hard = by_kind(rendered, "ResourceQuota")[0]["spec"]["hard"]
    pods = list(pod_templates(rendered))
    assert sum(max_pods(owner) for owner, _ in pods) <= int(hard["pods"])
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


def test_mysql_accepts_only_wordpress_and_setup(rendered: list[dict[str, Any]]) -> None:
    mysql = policy(rendered, "mysql")
    [inbound] = mysql["ingress"]
    assert peer_components(inbound, "from") == {"wordpress", "setup"}
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

def test_setup_is_an_idempotent_post_install_hook(rendered: list[dict[str, Any]]) -> None:
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
    assert re.fullmatch(r"10\.\d+\.\d+", env["WC_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["STOREFRONT_VERSION"])
    script = one(rendered, "ConfigMap", "setup")["data"]["setup.sh"]
    for step in ("wp core is-installed", "wp plugin install", "woocommerce_coming_soon no",
                 "woocommerce_enable_guest_checkout yes", '"enabled":"yes"',
                 "wp rewrite structure '/%postname%/'", "WC_Install::create_pages",
                 "wp wc product create", "--status=publish", "--regular_price"):
        assert step in script, step


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
            assert query["type"] == ["simple"]
            self._answer(200, [{"id": 15, "name": "Starter T-Shirt", "type": "simple"}])
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
                               "totals": {"total_price": "1900", "currency_code": "USD"}})
        elif path == "/checkout":
            assert self.carts[token], "checkout with an empty cart"
            assert body["payment_method"] == "cod"
            for field in ("first_name", "last_name", "address_1", "city", "postcode", "country",
                          "email"):
                assert body["billing_address"][field], field
            order = {"order_id": 100 + len(self.orders), "order_key": "wc_order_abc",
                     "status": "processing", "billing_address": body["billing_address"],
                     "payment_result": {"payment_status": "success"}}
            self.orders[order["order_id"]] = order
            self._answer(200, order)
        else:
            self._answer(404, {"code": "rest_no_route"})


def test_checkout_script_buys_through_the_store_api(tmp_path: Path) -> None:
    """files/woocommerce/checkout-test.sh against a fake Store API on 127.0.0.1."""
    if not shutil.which("curl"):
        unavailable("curl is not installed (apt-get install curl)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStoreApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    order_file = tmp_path / "order-id"
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path),
           "STOREFRONT": f"http://127.0.0.1:{server.server_port}",
           "STORE_HOST": "store-ci.localhost", "BILLING_EMAIL": "helm-test@example.com",
           "ORDER_ID_FILE": str(order_file)}
    try:
        result = subprocess.run(
            ["sh", str(storechart.CHART_DIR / "files" / "woocommerce" / "checkout-test.sh")],
            capture_output=True, text=True, check=False, timeout=60, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "order 100 exists with status processing" in result.stdout
    assert order_file.read_text().strip() == "100"


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
    assert int(by_kind(docs, "ResourceQuota")[0]["spec"]["hard"]["pods"]) == 2 + 1 + 3


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
