"""`python -m localknative start|stop|serving` (see docs/controlplane.md, "Knative").

start --state-dir DIR   Knative Eventing (+ the Serving stand-in) on the cluster in DIR
stop --state-dir DIR    stop its processes
serving --kubeconfig F  run the Serving stand-in in the foreground (start runs it)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from kubernetes import config

import localkube
from localknative import StartError, start, stop
from localknative.serving import Serving


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localknative", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop"):
        sub.add_parser(name).add_argument("--state-dir", type=Path, required=True)
    sub.add_parser("serving").add_argument("--kubeconfig", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "start":
        try:
            start(localkube.describe(args.state_dir))
        except (StartError, localkube.StartError) as err:
            logging.getLogger("localknative").error("%s", err)
            return 1
    elif args.command == "stop":
        stop(args.state_dir)
    else:
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        serving = Serving(config.new_client_from_config(config_file=args.kubeconfig))
        # The watch blocks in a read: run it aside, so a signal ends the process at once.
        threading.Thread(target=serving.run, args=(done,), daemon=True).start()
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
