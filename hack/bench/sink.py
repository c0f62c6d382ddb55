"""The receiver of the throughput figures: it takes any POST and answers at once, keeping
connections alive, so that what is measured is the sender. Its answer is a store.list.result
event listing no store, what the gateway's store cap reads from list-stores; the Broker's
answer is only checked for its status.

`python -m bench.sink PORT` (asyncio, one process of its own).
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"stores": [], "deadLetters": []}'
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nce-specversion: 1.0\r\n"
        b"ce-id: bench\r\nce-source: /bench/sink\r\n"
        b"ce-type: io.storeplatform.store.list.result\r\n"
        b"Content-Length: %d\r\n" % len(BODY))
ANSWER = HEAD + b"\r\n" + BODY
ANSWER_AND_CLOSE = HEAD + b"Connection: close\r\n\r\n" + BODY


class Sink(asyncio.Protocol):
    """HTTP/1.1 requests with Content-Length bodies, answered as soon as they are read."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            assert self.transport is not None
            if b"connection: close" in head:
                self.transport.write(ANSWER_AND_CLOSE)
                self.transport.close()
                return
            self.transport.write(ANSWER)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", port,
                                                           backlog=256)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
