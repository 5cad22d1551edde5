"""A small HTTP/1.1 load generator: keep-alive connections, one asyncio task per client, per-request
latency. Runs in a process of its own so its CPU is not the server's (both share the machine,
which is what the targets measure: server, database and load generator together)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Sequence
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/fhir+json"


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    errors: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name.lower() == "connection" and "close" in value.lower():
            keep = False
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return status, body, keep
    return status, await reader.readexactly(length) if length else b"", keep


async def _client(host: str, port: int, requests: Sequence[Request], offset: int, deadline: float, limit: int, result: Result, counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and counter[0] < limit:
            # One cursor shared by all clients: each request of the list is sent once per pass.
            req = requests[(offset + counter[0]) % len(requests)]
            counter[0] += 1
            head = f"{req.method} {req.path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/fhir+json\r\n"
            if req.body:
                head += f"Content-Type: {req.content_type}\r\nContent-Length: {len(req.body)}\r\n"
            for attempt in range(3):
                started = time.perf_counter()
                try:
                    writer.write(head.encode() + b"\r\n" + req.body)
                    status, _, keep = await _read_response(reader)
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    # The server closed an idle connection: reconnect and send the same request.
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
            else:
                result.errors += 1
                continue
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _run(base: str, requests: Sequence[Request], clients: int, duration: float, limit: int) -> Result:
    parts = urlsplit(base)
    result = Result()
    counter = [0]
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*[
        _client(parts.hostname or "127.0.0.1", parts.port or 80, requests, 0, deadline, limit, result, counter)
        for k in range(clients)
    ])
    result.elapsed = time.perf_counter() - started
    return result


def _child(conn, base, requests, clients, duration, limit) -> None:  # type: ignore[no-untyped-def]
    conn.send(asyncio.run(_run(base, requests, clients, duration, limit)))
    conn.close()


def run(base: str, requests: Sequence[Request], clients: int, duration: float = 10.0, limit: int = 10**9) -> Result:
    """Drive the server from a separate process; stop after `duration` seconds or `limit` requests."""
    parent, child = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.get_context("spawn").Process(target=_child, args=(child, base, list(requests), clients, duration, limit))
    proc.start()
    result = parent.recv()
    proc.join()
    return result  # type: ignore[no-any-return]
