"""`python -m localkube start|stop|status|agents --state-dir DIR` (see docs/controlplane.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from localkube import cluster
from localkube.agents import run_agents
from localkube.options import DEFAULT_BIN_DIR, ClusterOptions, ExecutorOptions


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localkube",
                                     description="A local Kubernetes control plane with KWOK "
                                                 "nodes and a job executor.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("start", "start (or find running) and print the kubeconfig path"),
                       ("stop", "stop every process of the cluster"),
                       ("status", "print which components run"),
                       ("agents", "run the job executor and PV provisioner (started by start)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", type=Path, required=True)
        if name == "start":
            cmd.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
            cmd.add_argument("--nodes", type=int, default=1)
            cmd.add_argument("--apiserver-port", type=int, default=0,
                             help="fixed API server port (default: a free one)")
            cmd.add_argument("--timeout", type=float, default=180.0)
            cmd.add_argument("--runner-path", action="append", default=[],
                             help="directory prepended to runner PATH (repeatable)")
            cmd.add_argument("--runner-pythonpath", action="append", default=[],
                             help="runner PYTHONPATH entry (repeatable)")
            cmd.add_argument("--runner-workdir", help="working directory of runner processes")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> ClusterOptions:
    defaults = ExecutorOptions()
    executor = ExecutorOptions(
        path_prepend=tuple(args.runner_path),
        pythonpath=tuple(args.runner_pythonpath) or defaults.pythonpath,
        workdir=args.runner_workdir or defaults.workdir)
    return ClusterOptions(state_dir=args.state_dir, bin_dir=args.bin_dir, nodes=args.nodes,
                          apiserver_port=args.apiserver_port, ready_timeout=args.timeout,
                          executor=executor)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    if args.command == "start":
        try:
            started = cluster.start(options_from(args))
        except cluster.StartError as err:
            logging.getLogger("localkube").error("%s", err)
            return 1
        sys.stdout.write(f"{started.kubeconfig}\n")
    elif args.command == "stop":
        cluster.stop(args.state_dir)
    elif args.command == "status":
        running = cluster.component_status(args.state_dir)
        sys.stdout.write("".join(f"{name}: {'running' if up else 'stopped'}\n"
                                 for name, up in running.items()))
        return 0 if all(running.values()) else 3
    else:
        run_agents(args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
