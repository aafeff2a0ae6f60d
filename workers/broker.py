"""The embedded broker: kombu's filesystem transport, made safe for several processes.

Kombu's own filesystem transport (5.x) has three races that a demo or test machine hits once
producers and workers run side by side:

* ``_put`` writes a message under its final name, so a consumer can list it and read it while it
  is still empty or half written (the worker dies with ``JSONDecodeError: Expecting value``);
* ``_get`` claims a message with ``shutil.move`` into the temp folder, which is a copy and a
  delete when the two folders are on different file systems: two consumers can both copy the
  file (a doubled job), or one can read a half-copied file;
* the exchange tables are rewritten in place (``open("wb")`` truncates before the lock is
  taken), so a reader can see an empty table.

This subclass publishes each message by writing a hidden temporary file and ``os.replace``-ing it
to its final name, claims a message by ``os.rename`` to a hidden name in the same folder (atomic:
exactly one consumer wins), and replaces exchange tables the same way under a lock file. The
file layout and names are otherwise kombu's, so a queue written by either can be read by either.

Select it with ``CELERY_BROKER_TRANSPORT`` (``config.settings`` does when the broker URL is
``filesystem://``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

_HIDDEN = "."  # kombu matches "<stamp>_<uuid>.<queue>.msg"; a leading dot never matches


def _write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds either its old content or all of ``data``, never a part of it."""
    temporary = path.with_name(f"{_HIDDEN}tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ChannelError(f"Cannot write {path}") from exc


class Channel(filesystem.Channel):
    # (kombu's two base classes name the second parameter differently; it is passed by position.)
    def _put(self, queue: Any, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        _write_atomically(Path(self.data_folder_out) / name, str_to_bytes(dumps(message)))

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        for name in sorted(os.listdir(folder)):
            if name.startswith(_HIDDEN) or name.partition(".")[2] != wanted:
                continue
            claimed = folder / f"{_HIDDEN}claimed-{uuid.uuid4().hex}-{name}"
            try:
                os.rename(folder / name, claimed)  # atomic: one consumer gets each message
            except FileNotFoundError:
                continue  # another consumer claimed it first
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                os.replace(claimed, folder / name)  # back in the queue, visible to everyone
                raise ChannelError(f"Cannot read {claimed} from queue {queue!r}") from exc
            self._dispose(claimed, name)
            return loads(bytes_to_str(payload))
        raise Empty()

    def _dispose(self, claimed: Path, name: str) -> None:
        if self.store_processed:
            # (shutil.move: the processed folder may be on another file system.)
            shutil.move(claimed, Path(self.processed_folder) / name)
        else:
            claimed.unlink(missing_ok=True)

    # --- exchange tables: replaced whole, under a lock file ----------------------------------

    @contextmanager
    def _table_lock(self, exchange: str) -> Iterator[Path]:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with file.with_name(f"{_HIDDEN}{file.name}.lock").open("a") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield file
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def get_table(self, exchange: str) -> list[Any]:
        file = self._exchange_file(exchange)
        try:
            text = bytes_to_str(file.read_bytes())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*q) for q in loads(text)] if text else []

    def _queue_bind(
        self, exchange: str, routing_key: str, pattern: str, queue: str, *args: Any
    ) -> None:
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock(exchange) as file:
            queues = self.get_table(exchange)
            if entry not in queues:
                _write_atomically(file, str_to_bytes(dumps([entry, *queues])))

    def _delete(
        self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any
    ) -> None:
        # The virtual channel's own bookkeeping, skipping kombu's in-place table rewrite.
        super(filesystem.Channel, self)._delete(
            queue, exchange, routing_key, pattern, *args, **kwargs
        )
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock(exchange) as file:
            queues = self.get_table(exchange)
            if entry in queues:
                queues.remove(entry)
                _write_atomically(file, str_to_bytes(dumps(queues)))


class Transport(filesystem.Transport):
    """Kombu's filesystem transport with atomic publish, claim and exchange-table updates."""

    Channel = Channel
    driver_name = "filesystem-atomic"
