"""Copying the SQLite sink's write-ahead log into the database, off the sink's worker.

In WAL mode a commit appends to the log, and a checkpoint copies the log into the database file
and syncs both to disk. SQLite runs it inside the commit that takes the log past
``wal_autocheckpoint`` pages, so by default the worker that writes the rows also waits for the
disk, about a sixth of its time under load (measured). Here the worker nudges a
:class:`Checkpointer` every :data:`CHECKPOINT_ROWS` rows instead, and the checkpointer runs a
``PASSIVE`` checkpoint on its own thread and connection: it does not block the writer (it copies
what no reader still needs) and its I/O runs without the GIL. The worker's own automatic
checkpoint stays, at :data:`BACKSTOP_PAGES`: under writing that never pauses the log starts over
only after a checkpoint has copied all of it, so the log grows to about that size, and the
worker's checkpoint there finds most of it already copied.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["BACKSTOP_PAGES", "CHECKPOINT_ROWS", "Checkpointer"]

#: Rows written between two nudges: about 8 MiB of log with the sink's rows and indexes.
CHECKPOINT_ROWS = 16_384
#: The writing connection's ``wal_autocheckpoint``: four times SQLite's default of 1000 pages.
#: (A larger log alone costs the writer more, not less: every page it looks up is first looked
#: for in the log.)
BACKSTOP_PAGES = 4000


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own thread when nudged. The thread starts
    at the first nudge; a failed checkpoint is left for the next one (or the backstop)."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._due = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Checkpoints run so far (for tests and the curious).
        self.runs = 0

    def nudge(self) -> None:
        """Ask for a checkpoint soon; several nudges while one runs make one more."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"workflow-traces:checkpoint:{self.path}", daemon=True
            )
            self._thread.start()
        self._due.set()

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread, waiting up to ``timeout`` for a checkpoint under way. Closing the
        writing connection afterwards checkpoints what is left, as SQLite always does."""
        self._stopping = True
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        conn = None
        try:
            # mode=rw: never create the file (it may have been removed since the writer opened
            # it; the writer makes it again, with its schema).
            uri = self.path.absolute().as_uri() + "?mode=rw"
            conn = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout, isolation_level=None)
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error:
                    continue  # the database is busy or gone: the next nudge tries again
        except sqlite3.Error:
            return  # no connection: the writer's own automatic checkpoint does the work
        finally:
            if conn is not None:
                conn.close()
