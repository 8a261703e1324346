"""What redis-py's synchronous client answers, as types.

redis-py annotates each command once for its blocking and its asyncio client, so a reply is typed
`Awaitable[T] | T` (or `Any`), where T assumes `decode_responses=True` (str); and `Pipeline.execute`
has no annotations at all. The connector's clients are synchronous and leave responses undecoded,
so a reply is never awaitable and its strings are bytes. These functions say so where a reply enters
typed code: each is a `cast`, because that fact is the one the library's own typing cannot express.
They do nothing at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from redis.client import Pipeline
from redis.typing import ResponseT


def bytes_or_none(reply: ResponseT) -> bytes | None:
    """GET, HGET, LINDEX, LPOP: the value, None when there is none."""
    return cast("bytes | None", reply)


def bytes_list(reply: ResponseT) -> list[bytes]:
    """LRANGE, HKEYS."""
    return cast("list[bytes]", reply)


def bytes_or_none_list(reply: ResponseT) -> list[bytes | None]:
    """MGET, HMGET: one value or None per key asked for."""
    return cast("list[bytes | None]", reply)


def bytes_set(reply: ResponseT) -> set[bytes]:
    """SMEMBERS."""
    return cast("set[bytes]", reply)


def bytes_hash(reply: ResponseT) -> dict[bytes, bytes]:
    """HGETALL: field → value, empty when the key does not exist."""
    return cast("dict[bytes, bytes]", reply)


def integer(reply: ResponseT) -> int:
    """LLEN, ZCARD and the other counts."""
    return cast(int, reply)


def scored(reply: ResponseT) -> list[tuple[bytes, float]]:
    """ZRANGE / ZREVRANGE ... WITHSCORES: (member, score) pairs."""
    return cast("list[tuple[bytes, float]]", reply)


def popped(reply: ResponseT) -> tuple[bytes, bytes] | None:
    """BLPOP: (list name, value), None when the wait ran out."""
    return cast("tuple[bytes, bytes] | None", reply)


def stream_reads(reply: ResponseT) -> list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]:
    """XREAD, XREADGROUP: per stream, its name and its entries as (id, fields); empty when the wait
    ran out. (redis-py gives each stream as a two-item list, which unpacks like the pair typed here.)"""
    return cast("list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]", reply)


def execute(pipe: Pipeline) -> list[Any]:
    """`pipe.execute()`: one reply per queued command, in order (their types are the commands')."""
    return cast(Callable[[], list[Any]], pipe.execute)()
