"""The Redis cache backend, with one client per connection pool, and windowed counters.

Django's backend builds a new ``redis.Redis`` for every call, and each one sets up its table
of response callbacks (about 0.1 ms): a battle request makes several cache calls. A client is
thread-safe and takes its connections from the pool, so one per pool serves every call.

``count_hits`` counts one hit in several windowed counters, in order, stopping at the first
one past its limit, in one round trip (a Lua script: atomic, and the key gets its expiry with
its first hit, so none outlives its window). The rate limiter counts three scopes per request
with it, where ``add`` plus ``incr`` per scope took six round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _OneClientPerPool(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        base: Any = self  # Django's client keeps these private and untyped
        index = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = base._get_connection_pool(write)
            client = self._clients[index] = base._client(connection_pool=pool)
        return client


# KEYS: the counters, in order; ARGV: a limit and an expiry (s) per counter. Returns the
# 1-based position of the first counter whose count passed its limit (0: none) and that count.
_COUNT_HITS = """
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
  if count > tonumber(ARGV[2 * i - 1]) then return {i, count} end
end
return {0, 0}
"""


class PooledRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _OneClientPerPool
        self._scripts: dict[int, Any] = {}

    def redis_client(self) -> Any:
        """The ``redis.Redis`` client that writes go through."""
        backend: Any = self  # Django keeps its client private and untyped
        return backend._cache.get_client(None, write=True)

    def count_hits(self, counters: Sequence[tuple[str, int, int]]) -> tuple[int | None, int]:
        """Count one hit in each ``(key, limit, expiry_s)``, in order, up to and including the
        first whose count passes its limit; returns that counter's index (None: none did) and
        its count. One round trip; raises ``RedisError`` when Redis cannot be reached."""
        client = self.redis_client()
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(_COUNT_HITS)
        # make_key, not make_and_validate_key: the validation warns of keys memcached would
        # refuse, one character at a time in Python; Redis takes any key.
        keys = [self.make_key(key) for key, _, _ in counters]
        args = [n for _, limit, expiry_s in counters for n in (limit, expiry_s)]
        try:
            position, count = _evalsha(client.connection_pool, script.sha, keys, args)
        except NoScriptError:  # a restarted (or flushed) Redis: load it again
            script.sha = client.script_load(_COUNT_HITS)
            position, count = _evalsha(client.connection_pool, script.sha, keys, args)
        return (int(position) - 1 if position else None), int(count)


def _evalsha(pool: Any, sha: str, keys: list[str], args: list[int]) -> Any:
    """``EVALSHA`` on a connection of ``pool``: what ``Script.__call__`` sends, without the
    client's command layers around it (half the CPU of a rate-limited request's round trip).
    The pool hands out a live connection (it replaces one that Redis dropped, as after a
    restart); one that fails here is dropped, and the error is the caller's, as the counter
    may have been counted: no retry."""
    connection = pool.get_connection()
    try:
        connection.send_command("EVALSHA", sha, len(keys), *keys, *args)
        return connection.read_response()
    except (RedisConnectionError, RedisTimeoutError):
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
