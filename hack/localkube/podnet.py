"""Inside a pod's network namespace: `python -m localkube.podnet [--hosts FILE] [--inward
P=SOCK] [--expose P=SOCK] -- PROGRAM ARGS...` (started by localkube.network.pod_argv under
`unshare --net --mount`).

It bind-mounts FILE over /etc/hosts (in its own mount namespace only), brings the
namespace's loopback up, listens on 127.0.0.1:P for each --inward and relays
to the Unix socket SOCK outside (the API server, the cluster's HTTP proxy), listens on the
Unix socket SOCK for each --expose and relays to 127.0.0.1:P inside (the pod's own ports),
then runs PROGRAM, passes SIGTERM/SIGINT on, and exits with PROGRAM's status.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import fcntl
import logging
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
from pathlib import Path

from localkube.network import _TCPServer, _unix_server, relay_handler, tcp_backend, unix_backend

log = logging.getLogger("localkube.podnet")

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
MS_BIND = 0x1000


def loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def bind_hosts(hosts: Path) -> None:
    """`mount --bind HOSTS /etc/hosts`, without needing util-linux's mount."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mount(str(hosts).encode(), b"/etc/hosts", None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind mount of {hosts} on /etc/hosts: {os.strerror(err)}")


def _pair(text: str) -> tuple[int, Path]:
    port, _, path = text.partition("=")
    return int(port), Path(path)


def serve(server: socketserver.BaseServer) -> None:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.podnet")
    parser.add_argument("--hosts", type=Path)
    parser.add_argument("--inward", action="append", default=[], type=_pair)
    parser.add_argument("--expose", action="append", default=[], type=_pair)
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    logging.basicConfig(level=logging.INFO, format="podnet: %(message)s", stream=sys.stderr)
    if args.hosts:
        bind_hosts(args.hosts)
    loopback_up()
    for port, path in args.inward:
        serve(_TCPServer(("127.0.0.1", port),
                         relay_handler(lambda path=path: unix_backend(path))))
    for port, path in args.expose:
        serve(_unix_server(path, relay_handler(lambda port=port: tcp_backend(port))))
    child = subprocess.Popen(program)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = child.wait()
    for _port, path in args.expose:
        path.unlink(missing_ok=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
