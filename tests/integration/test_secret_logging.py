"""No secret in any log at any level (finding 4): a create at LOG_LEVEL=DEBUG on the real API
server, with the real runner and helm, and every log line searched for every generated
credential. Only key names are ever printed, never a value.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from kubernetes import client

from storeplatform import config, create_store
from tests.integration.test_platform_flow import RUNNER, Platform, send

pytestmark = pytest.mark.integration

NS = "storeplatform"


def leaked(values: dict[str, str], text: str) -> list[str]:
    """The names of the values that appear in text (the values themselves stay out)."""
    return sorted(key for key, value in values.items() if value and value in text)


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def body_logger_would_leak(admin, name: str, values: dict[str, str]) -> bool:
    logger = logging.getLogger("kubernetes.client.rest")
    kept, level, propagate = Kept(), logger.level, logger.propagate
    logger.addHandler(kept)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # nothing of it reaches pytest's capture
    try:
        client.CoreV1Api(admin).read_namespaced_secret("store-credentials", name)
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
        logger.propagate = propagate
    found = bool(leaked({k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
                        "\n".join(kept.lines)))
    kept.lines.clear()
    return found


def test_a_debug_create_writes_no_credential_to_any_log(cluster, tmp_path, caplog, request):
    platform = Platform(cluster, tmp_path)
    request.addfinalizer(platform.close)
    name = "store-debug-logs"
    caplog.set_level(logging.DEBUG)  # the root logger and everything under it
    app = create_store.create_app(RUNNER | {"KUBECONFIG": platform.kubeconfigs["create-store"],
                                            "LOG_LEVEL": "DEBUG"}).test_client()
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    for logger in config.BODY_LOGGERS:  # whatever LOG_LEVEL says
        assert not logging.getLogger(logger).isEnabledFor(logging.DEBUG), logger
    response = send(app, "io.storeplatform.store.create", {"name": name}, event_id="e-debug")
    assert response.status_code == 202, response.data
    # A redelivery reads the Secret's neighbours again (the namespace, the Job): still quiet.
    assert send(app, "io.storeplatform.store.create", {"name": name},
                event_id="e-debug").status_code == 202
    store = platform.wait_for(name, lambda s: s and s["status"] in ("ready", "failed"))
    assert store["status"] == "ready", store

    secret = client.CoreV1Api(platform.admin).read_namespaced_secret("store-credentials", name)
    values = {key: base64.b64decode(value).decode() for key, value in secret.data.items()
              if key.endswith(("password", "key", "salt"))}
    assert len(values) >= 10
    encoded = {f"{key} (base64)": value for key, value in secret.data.items()}

    records = [f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records]
    assert any("helm-install-store-debug-logs" in line for line in records), records[-5:]
    texts = {"create-store's log records": "\n".join(records)}
    state = Path(cluster.state_dir)
    runner_logs = sorted((state / "pods" / NS).glob(f"helm-install-{name}-*/container.log"))
    assert runner_logs, "the runner left no output"
    texts |= {f"runner output {p.parent.name}": p.read_text(errors="replace")
              for p in runner_logs}
    texts |= {f"localkube log {p.name}": p.read_text(errors="replace")
              for p in (state / "logs").glob("*.log")}
    found = {where: leaked(values | encoded, text) for where, text in texts.items()}
    assert {where: names for where, names in found.items() if names} == {}
    print(f"\nsearched {len(texts)} logs ({sum(len(t) for t in texts.values())} characters, "
          f"{len(records)} create-store records with DEBUG on) for {len(values)} credentials: none")

    # The search has teeth: the client's body logger, let through, does write the values
    # (into a private list here, never to the test's output).
    assert body_logger_would_leak(platform.admin, name, values)

    gone = send(platform.delete_app(), "io.storeplatform.store.delete", {"name": name})
    assert gone.status_code == 202
    platform.wait_for(name, lambda s: s is None)
