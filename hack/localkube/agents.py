"""The localkube agents process: job executor, PV provisioner and the cluster network
(localkube.network), each in its own thread."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path

from kubernetes import client, config

from localkube.components import Layout
from localkube.executor import Executor
from localkube.network import Network
from localkube.options import ExecutorOptions
from localkube.provisioner import Provisioner

log = logging.getLogger("localkube.agents")


def run_agents(state_dir: Path, stop: threading.Event | None = None) -> None:
    """Runs until SIGTERM/SIGINT (or stop is set), then kills the runner processes."""
    layout = Layout(state_dir.resolve())
    cluster = json.loads(layout.cluster_file.read_text())
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    api = config.new_client_from_config(config_file=str(layout.component_kubeconfig("agents")))
    executor = Executor(api, ExecutorOptions.from_dict(cluster["options"]["executor"]),
                        layout.pods, cluster["server"], (layout.pki / "ca.crt").read_bytes())
    provisioner = Provisioner(api, layout.volumes)
    core = client.CoreV1Api(api)

    def services() -> list[dict]:
        listed = core.list_service_for_all_namespaces(_request_timeout=10,
                                                      _preload_content=False)
        return json.loads(listed.data)["items"]

    net = Network(layout.state_dir, cluster["ports"]["apiserver"], services)
    threads = [threading.Thread(target=executor.run, args=(stop,), name="executor", daemon=True),
               threading.Thread(target=provisioner.run, args=(stop,), name="provisioner",
                                daemon=True),
               threading.Thread(target=net.run, args=(stop,), name="network", daemon=True)]
    for thread in threads:
        thread.start()
    stop.wait()
    log.info("agents stopping: killing runner processes")
    executor.shutdown()
