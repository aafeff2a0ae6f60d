"""Kombu's Redis transport, with a worker that outlives a Redis restart.

When Redis goes away under a consuming worker, Celery closes the channel and reconnects. Kombu
5.x closes it in an order that kills the worker instead: the channel lets go of its connection
pools, the connection lets go of its address (``transport.client = None``), and only then does
the channel put its unacknowledged messages back, through a pool it builds again from that
address: ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery
reports as "Unrecoverable error" before exiting. A supervisor restarts the worker, but a restart
costs seconds of CPU (Django, Celery, numpy) exactly when the machine catches up.

This channel remembers the address it was opened with and builds that late pool from it. With
Redis still down the put-back then fails as a connection error, which the close ignores, and
Celery's reconnect loop takes over; Redis's own unacknowledged index returns the messages after
``visibility_timeout``, as it would after any lost worker.

Select it with ``CELERY_BROKER_TRANSPORT`` (``config.settings`` does for ``redis://`` broker
URLs; ``rediss://`` keeps kombu's transport, since kombu turns TLS on by the transport's name).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _opened_with: dict[bool, dict[str, Any]]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        remembered = self.__dict__.setdefault("_opened_with", {})
        if self.connection.client is None and remembered:
            return dict(remembered.get(asynchronous) or remembered[not asynchronous])
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        remembered[asynchronous] = dict(params)
        return params


class Transport(redis.Transport):
    Channel = Channel
