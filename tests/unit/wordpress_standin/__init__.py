"""A stand-in for WordPress (the executable `wp` next to this file) and how the chart
tests drive the chart's wp-cli scripts against it: `Store` holds one store's state,
its /scripts directory (from the rendered scripts ConfigMap) and its Secret files, and
runs setup.sh / cron.sh with sh and the env of the rendered Job and CronJob.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

STANDIN = Path(__file__).parent
ADMIN_PASSWORD = "correct horse battery staple 7"
# What the WordPress.org directory serves, to the stand-in.
DIRECTORY = {"woocommerce": ["10.2.2", "11.1.2", "11.2.0", "11.3.0"],
             "storefront": ["4.5.4", "4.6.1", "4.6.2"]}


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


class Store:
    """One store's stand-in state, its scripts directory and its Secret files."""

    def __init__(self, root: Path, docs: list[dict[str, Any]]) -> None:
        self.root, self.state_file = root, root / "state" / "state.json"
        self.state_file.parent.mkdir(parents=True)
        self.scripts, self.secrets = root / "scripts", root / "secrets"
        self.scripts.mkdir()
        self.secrets.mkdir(mode=0o700)
        self.load_chart(docs)
        (self.secrets / "admin-user").write_text("admin")
        (self.secrets / "admin-email").write_text("owner@store-ci.test")
        (self.secrets / "admin-password").write_text(ADMIN_PASSWORD + "\n")
        self.write({"db_up": True, "installed": False, "core_version": "7.1.0", "db_schema": "",
                    "options": {}, "users": {}, "plugins": {}, "themes": {
                        "twentytwentyfive": {"version": "1.3", "active": False}},
                    "active_theme": "", "products": {}, "orders": {}, "pages": {},
                    "cron": [], "ran": [], "directory": DIRECTORY})

    def load_chart(self, docs: list[dict[str, Any]]) -> None:
        """The scripts ConfigMap as mounted at /scripts, and the containers' env."""
        scripts = next(d for d in docs if d["kind"] == "ConfigMap"
                       and d["metadata"]["labels"]["app.kubernetes.io/component"] == "setup")
        for key, text in scripts["data"].items():
            (self.scripts / key).write_text(text)
        job = next(d for d in docs if d["kind"] == "Job")
        cron = next(d for d in docs if d["kind"] == "CronJob")
        self.setup_env = container_env(job["spec"]["template"]["spec"]["containers"][0])
        self.cron_env = container_env(
            cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0])

    def read(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def change(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        state = self.read()
        mutate(state)
        self.write(state)

    def calls(self) -> list[str]:
        log = self.state_file.with_name("calls.log")
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.removeprefix("--no-color ") for line in lines]

    def run(self, script: str, env: dict[str, str],
            path_first: Path | None = None) -> subprocess.CompletedProcess[str]:
        self.state_file.with_name("calls.log").unlink(missing_ok=True)
        path = os.pathsep.join([*([str(path_first)] if path_first else []), str(STANDIN),
                                os.environ["PATH"]])
        full_env = {**env, "PATH": path,
                    "WP_STANDIN_STATE": str(self.state_file), "SCRIPTS_DIR": str(self.scripts),
                    "SECRETS_DIR": str(self.secrets), "HOME": str(self.root)}
        return subprocess.run(["sh", str(self.scripts / script)], capture_output=True, text=True,
                              check=False, timeout=60, env=full_env)

    def setup(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        return self.run("setup.sh", {**self.setup_env, **overrides})

    def cron(self) -> subprocess.CompletedProcess[str]:
        return self.run("cron.sh", self.cron_env)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def product(state: dict[str, Any], sku: str) -> dict[str, Any]:
    [found] = [p for p in state["products"].values() if p["sku"] == sku]
    return found


def the_owner_changes_their_shop(state: dict[str, Any]) -> None:
    """What an owner does in wp-admin after the first day."""
    options = state["options"]
    options["woocommerce_currency"] = "EUR"
    options["woocommerce_default_country"] = "DE:BE"
    options["woocommerce_cod_settings"]["enabled"] = "no"
    options["woocommerce_coming_soon"] = "yes"
    options["permalink_structure"] = "/shop/%postname%/"
    state["active_theme"] = "twentytwentyfive"
    product(state, "STARTER-TSHIRT")["status"] = "draft"
    product(state, "STOREPLATFORM-CHECKOUT-PROBE")["status"] = "draft"
    state["users"]["admin"]["password"] = "the owner's own password"


