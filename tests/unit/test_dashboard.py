"""The dashboard as the gateway serves it."""

from pathlib import Path

from storeplatform import gateway

ROOT = Path(__file__).resolve().parents[2]
BASE = {"K_SINK": "http://127.0.0.1:1/", "LIST_URL": "http://127.0.0.1:1/"}


def test_files_and_config_are_served_with_a_dashboard_dir():
    client = gateway.create_app(BASE | {"DASHBOARD_DIR": str(ROOT / "dashboard")}).test_client()
    index = client.get("/")
    assert index.status_code == 200 and b"<html" in index.data.lower()
    assert client.get("/js/api.js").status_code == 200
    assert client.get("/config.json").get_json() == {"gatewayUrl": "", "authRequired": False}


def test_without_a_dashboard_dir_only_its_config_is_served():
    client = gateway.create_app(BASE | {"GATEWAY_AUTH": "token", "GATEWAY_TOKEN": "t"}
                                ).test_client()
    assert client.get("/").status_code == 404
    assert client.get("/config.json").get_json() == {"gatewayUrl": "", "authRequired": True}


def test_no_file_outside_the_dashboard_dir():
    client = gateway.create_app(BASE | {"DASHBOARD_DIR": str(ROOT / "dashboard")}).test_client()
    assert client.get("/../README.md").status_code == 404
    assert client.get("/%2e%2e/README.md").status_code == 404


def test_the_dashboard_may_not_be_framed_nor_sniffed():
    client = gateway.create_app(BASE | {"DASHBOARD_DIR": str(ROOT / "dashboard")}).test_client()
    for path in ("/", "/js/app.js", "/styles.css"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The header repeats the page's own <meta> policy, adding what only a header can say.
    page = client.get("/").data.decode()
    meta = page.split('http-equiv="Content-Security-Policy"')[1].split('content="')[1]
    meta = meta.split('"')[0]
    header = client.get("/").headers["Content-Security-Policy"]
    assert header == meta + "; frame-ancestors 'none'"
