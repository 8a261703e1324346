"""A small asyncio HTTP/1.1 load generator with keep-alive connections.

Hand-written because the usual Python clients (requests, aiohttp) cost more CPU per request than
the endpoint under test on a 2-core machine, which would measure the client instead of the server.
Open-loop mode sends at a fixed rate and measures from the scheduled send time, so queueing delay
is counted (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        reused = self.writer is not None and not self.writer.is_closing()
        try:
            return await self._request(raw)
        except (OSError, asyncio.IncompleteReadError):
            if not reused:
                raise
            # The server closed an idle keep-alive connection: retry once on a new one, as
            # every HTTP client does.
            self.writer = None
            return await self._request(raw)

    async def _request(self, raw: bytes) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return status


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _closed_loop(
    host: str, port: int, make: Callable[[int], bytes], seconds: float, concurrency: int, ramp: float
) -> Result:
    """Clients join one by one over `ramp` seconds, like providers' connections arriving over time
    rather than in one burst; only the `seconds` after the last one joined are measured."""
    result = Result()
    counter = iter(range(10**9))
    start = time.perf_counter()
    measure_from = start + ramp
    deadline = measure_from + seconds

    async def client(index: int) -> None:
        await asyncio.sleep(ramp * index / concurrency)
        connection = Connection(host, port)
        while time.perf_counter() < deadline:
            raw = make(next(counter))
            started = time.perf_counter()
            try:
                status = await connection.request(raw)
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                connection = Connection(host, port)
                continue
            if started >= measure_from:
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    result.seconds = time.perf_counter() - measure_from
    return result


async def _open_loop(
    host: str,
    port: int,
    make: Callable[[int], bytes],
    rate: float,
    seconds: float,
    on_done: Callable[[int, int], None] | None = None,
) -> Result:
    result = Result()
    idle: list[Connection] = []
    total = int(rate * seconds)
    begin = time.perf_counter()

    async def one(index: int, scheduled: float) -> None:
        connection = idle.pop() if idle else Connection(host, port)
        try:
            status = await connection.request(make(index))
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
            return
        result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if on_done is not None:
            on_done(index, status)
        idle.append(connection)

    tasks = []
    for index in range(total):
        scheduled = begin + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - begin
    return result


def closed_loop(
    host: str, port: int, make: Callable[[int], bytes], seconds: float, concurrency: int, ramp: float = 1.0
) -> Result:
    return asyncio.run(_closed_loop(host, port, make, seconds, concurrency, ramp))


def open_loop(
    host: str,
    port: int,
    make: Callable[[int], bytes],
    rate: float,
    seconds: float,
    on_done: Callable[[int, int], None] | None = None,
) -> Result:
    """`on_done(index, status)` is called when a request's answer arrives."""
    return asyncio.run(_open_loop(host, port, make, rate, seconds, on_done))
