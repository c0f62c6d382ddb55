"""Prometheus metrics (metrics.py, gunicorn_conf.py): what is counted, and that a scrape of any
gunicorn worker reports every worker's samples (multiprocess mode) over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from storeplatform import create_store, metrics
from tests.helpers import MODES, Recorder, encode, free_port, receiving
from tests.unit.conftest import RUNNER, list_reply

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("mode", MODES)
def test_a_function_counts_events_by_type_and_outcome(fake_kube, untouchable, mode):
    app = create_store.create_app(RUNNER, kube=fake_kube).test_client()
    create = "io.storeplatform.store.create"
    before = {outcome: sample("storeplatform_events_received_total", function="create-store",
                              type=create, outcome=outcome)
              for outcome in ("accepted", "invalid_name")}
    headers, body = encode(create, {"name": f"store-m-{mode[:3]}"}, mode)
    assert app.post("/", headers=headers, data=body).status_code == 202
    headers, body = encode(create, {"name": "bad"}, mode)
    assert app.post("/", headers=headers, data=body).status_code == 400
    for outcome in before:
        assert sample("storeplatform_events_received_total", function="create-store",
                      type=create, outcome=outcome) == before[outcome] + 1


def test_unparsed_and_unexpected_types_are_counted_without_their_own_label(untouchable):
    app = create_store.create_app(RUNNER, kube=untouchable).test_client()
    labels = {"function": "create-store"}
    unparsed = sample("storeplatform_events_received_total", type="unparsed",
                      outcome="not_a_cloudevent", **labels)
    other = sample("storeplatform_events_received_total", type="other",
                   outcome="unexpected_event_type", **labels)
    assert app.post("/", data=b"{}").status_code == 400
    headers, body = encode("com.example.anything", {}, "binary")
    assert app.post("/", headers=headers, data=body).status_code == 400
    assert sample("storeplatform_events_received_total", type="unparsed",
                  outcome="not_a_cloudevent", **labels) == unparsed + 1
    assert sample("storeplatform_events_received_total", type="other",
                  outcome="unexpected_event_type", **labels) == other + 1
    assert sample("storeplatform_events_received_total", type="com.example.anything",
                  outcome="unexpected_event_type", **labels) == 0


def test_stores_by_status_sets_every_status_even_when_none_has_it():
    metrics.stores_by_status([{"status": "ready"}, {"status": "ready"}, {"status": "failed"},
                              {"status": "odd"}])
    assert [sample("storeplatform_stores", status=s) for s in metrics.STATUSES] == [0, 2, 1, 0]


def test_lifecycle_durations_go_to_the_histogram_of_their_action():
    count = sample("storeplatform_provisioning_duration_seconds_count", outcome="ready")
    deleted = sample("storeplatform_deletion_duration_seconds_count", outcome="deleted")
    metrics.lifecycle("install", "ready", 42.0)
    metrics.lifecycle("delete", "deleted", 7.0)
    assert sample("storeplatform_provisioning_duration_seconds_count", outcome="ready") == \
        count + 1
    assert sample("storeplatform_provisioning_duration_seconds_bucket", outcome="ready",
                  le="45.0") >= 1
    assert sample("storeplatform_deletion_duration_seconds_count", outcome="deleted") == \
        deleted + 1


def test_the_metrics_endpoint_speaks_the_prometheus_text_format(untouchable):
    response = create_store.create_app(RUNNER, kube=untouchable).test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"storeplatform_events_received", "storeplatform_kubernetes_api_errors"} <= names


def http(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def slow_list_reply(request):
    time.sleep(0.1)  # long enough that concurrent requests need more than one worker
    return list_reply(request)


def test_every_scrape_of_any_gunicorn_worker_counts_all_workers(tmp_path, broker):
    """Three workers, requests spread over them, a worker killed: each scrape, whichever
    worker answers, reports the total (gunicorn_conf's multiprocess set-up)."""
    with receiving(Recorder(slow_list_reply)) as lister:
        scrape_all_workers(tmp_path, broker, lister)


def scrape_all_workers(tmp_path, broker, lister):
    port, samples_dir = free_port(), tmp_path / "samples"
    samples_dir.mkdir()
    (samples_dir / "counter_99999.db").write_bytes(b"left over from an earlier run")
    env = os.environ | {"K_SINK": broker.url, "LIST_URL": lister.url,
                        "PYTHONPATH": str(ROOT / "functions"),
                        "PROMETHEUS_MULTIPROC_DIR": str(samples_dir)}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen([str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "3",
                             "--threads", "1", "--config", "python:storeplatform.gunicorn_conf",
                             "storeplatform.gateway:create_app()"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    listed = ("storeplatform_http_requests_total",
              (("method", "GET"), ("route", "/stores"), ("status", "200")))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http(base + "/health", 1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: http(base + "/stores")[0], range(60)))
        assert answers == [200] * 60
        workers = {p.name for p in samples_dir.glob("counter_*.db")}
        assert len(workers) >= 2, f"requests reached one worker only: {workers}"
        assert "counter_99999.db" not in workers  # emptied at start-up
        for _ in range(6):
            assert samples(http(base + "/metrics")[1])[listed] == 60
        worker = int(sorted(workers)[0].removeprefix("counter_").removesuffix(".db"))
        os.kill(worker, signal.SIGKILL)  # gunicorn starts another; its samples stay counted
        time.sleep(1.5)
        for _ in range(6):
            assert samples(http(base + "/metrics")[1])[listed] == 60
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
    lines = (tmp_path / "gunicorn.log").read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines), lines[:3]
