"""Threads or asyncio for the calls in flight (issue 15: "measure and choose").

The drain makes its calls out (ECE, the providers) from a bounded pool of threads with a requests
session (`http_session.OutboundSession`, `relay/drain.py` `DrainLoops`). The alternatives are an
event loop with an async client, or the same threads with a thinner client. What decides between
them on a small machine is the client's CPU per call (with ECE answering at once the work is
CPU-bound) and whether hundreds of calls can be in flight when ECE is slow.

Method: a server in its own process (aiohttp, one event loop, so it is never the bound on calls in
flight) answers `POST /call` with a small JSON body after DELAY seconds. Each client makes CALLS
calls with at most IN_FLIGHT at once, keeping connections open, and this process's CPU time
(`time.process_time`, all threads) is divided by the calls. The server's CPU is not counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from bench.figures import wait_until
from bench.stack import free_port
from connector.http_session import outbound_session

QUICK = os.environ.get("HTTP_CLIENTS_QUICK", "") not in ("", "0")
CALLS = 600 if QUICK else 3000
IN_FLIGHT = 256
"""The drain's loops per dispatch job (CONNECTOR_DRAIN_THREADS_MAX)."""
DELAYS = (0.0, 0.5)
BODY = json.dumps({"type": "message", "content": "x" * 200}).encode()

SERVER = """
import asyncio, sys
from aiohttp import web
async def call(request):
    await request.read()
    delay = float(request.query.get("delay", "0"))
    if delay:
        await asyncio.sleep(delay)
    return web.json_response({"id": "1", "status": "ok"})
app = web.Application()
app.router.add_post("/call", call)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, backlog=1024)
"""


@dataclass
class Row:
    client: str
    delay: float
    calls: int
    seconds: float
    cpu_seconds: float
    failures: int

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_seconds / self.calls


def timed(client: str, delay: float, run: Callable[[str], int], url: str) -> Row:
    cpu, began = time.process_time(), time.monotonic()
    failures = run(f"{url}?delay={delay}")
    return Row(client, delay, CALLS, time.monotonic() - began, time.process_time() - cpu, failures)


def with_threads(call: Callable[[str], bool]) -> Callable[[str], int]:
    """CALLS calls from IN_FLIGHT threads, as the drain loops make them."""

    def guarded(url: str) -> bool:
        try:
            return call(url)
        except Exception:  # a refused or broken call counts as failed, like a non-200
            return False

    def run(url: str) -> int:
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            return sum(not ok for ok in pool.map(lambda _: guarded(url), range(CALLS)))

    return run


def requests_session() -> Callable[[str], bool]:
    """The product's client: one OutboundSession shared by the threads."""
    session = outbound_session()

    def call(url: str) -> bool:
        return session.post(url, data=BODY, headers={"Content-Type": "application/json"}, timeout=30).ok

    return call


def urllib3_pool() -> Callable[[str], bool]:
    """The same threads with urllib3 alone (what requests runs on), no Session layer."""
    import urllib3

    pool = urllib3.PoolManager(maxsize=IN_FLIGHT, retries=False)

    def call(url: str) -> bool:
        response = pool.request("POST", url, body=BODY, headers={"Content-Type": "application/json"}, timeout=30)
        json.loads(response.data)
        return response.status == 200

    return call


def aiohttp_loop(url: str) -> int:
    """One event loop, IN_FLIGHT calls at once under a semaphore, aiohttp's connection pool."""
    import aiohttp

    async def main() -> int:
        limit = asyncio.Semaphore(IN_FLIGHT)
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> bool:
                headers = {"Content-Type": "application/json"}
                async with limit, session.post(url, data=BODY, headers=headers) as answer:
                    await answer.json()
                    return answer.status == 200

            results = await asyncio.gather(*(one() for _ in range(CALLS)))
        return sum(not ok for ok in results)

    return asyncio.run(main())


CLIENTS: dict[str, Callable[[], Callable[[str], int]]] = {
    "threads + requests (in use)": lambda: with_threads(requests_session()),
    "threads + urllib3": lambda: with_threads(urllib3_pool()),
    "asyncio + aiohttp": lambda: aiohttp_loop,
}


def measure() -> list[Row]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}/call"
    try:
        wait_until(lambda: _answers(url), 15, "the test server")
        rows = []
        for delay in DELAYS:
            for name, make in CLIENTS.items():
                run = make()
                run(f"{url}?delay=0")  # warm: imports, connections
                rows.append(timed(name, delay, run, url))
        return rows
    finally:
        server.terminate()
        server.wait(10)


def _answers(url: str) -> bool:
    try:
        return requests.post(url, data=b"{}", timeout=1).ok
    except requests.RequestException:
        return False


def report(rows: list[Row]) -> str:
    lines = [
        "## Threads or asyncio for the calls out (issue 15)",
        "",
        f"{CALLS} calls per row, at most {IN_FLIGHT} in flight, to a server in its own process answering "
        "after the row's delay; CPU is this process's (all threads), the server's not counted. One run, "
        "this machine.",
        "",
        "| client | server answers in | calls/s | client CPU per call | failed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.client} | {row.delay:g} s | {row.rate:.0f} | {row.cpu_ms_per_call:.2f} ms | {row.failures} |"
        )
    ceiling = IN_FLIGHT / max(DELAYS)
    lines += [
        "",
        f"With the server at {max(DELAYS):g} s, {IN_FLIGHT} calls in flight allow at most {ceiling:.0f} calls/s.",
    ]
    return "\n".join(lines) + "\n"


def run() -> str:
    return report(measure())


if __name__ == "__main__":
    print(run())
