"""The file sink: one folder per run, a JSON-lines file the store reads, and readable text.

Layout under ``path``::

    run_id=<encoded run id>/
        traces.jsonl     every record (what open_store reads): a header line
                         {"format": "workflow-traces", "version": 2, "fields": [...]}, then
                         batches: a line {"id_prefix": "..."}, then one JSON array a record,
                         its values in the order the header names
        stdout.txt       readable lines below ERROR
        stderr.txt       readable lines at ERROR and above, and writer(..., is_err=True)

Each batch is written with one ``os.write`` per file on an O_APPEND descriptor, under an
exclusive ``flock``, so lines from many threads and processes never interleave.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import orjson

from workflow_traces.core import record as _record
from workflow_traces.core.record import (
    F_EXC_TRACEBACK,
    F_FILENAME,
    F_IS_ERR,
    F_JOB_NAME,
    F_LEVEL,
    F_LINENO,
    F_MESSAGE,
    F_RECORD_ID,
    F_RUN_ID,
    F_SIZE,
    F_STAGE_NAME,
    F_TIME_NS,
    F_WORKFLOW_NAME,
    Record,
    RecordValues,
)
from workflow_traces.errors import ConfigError, UnsafeRunIdError
from workflow_traces.exporters.base import Exporter
from workflow_traces.exporters.encode import clean_text, dumps
from workflow_traces.pipeline.channel import DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_SIZE, Overflow
from workflow_traces.pipeline.handler import BufferedHandler, check_positive, from_sink_config
from workflow_traces.text import escape_terminal

__all__ = [
    "DEFAULT_FILE_PATH",
    "RECORD_FIELDS",
    "FileExporter",
    "WorkflowFileHandler",
    "read_records",
    "run_dir_name",
]

#: Where the file sink writes when no path is given.
DEFAULT_FILE_PATH = "./logs"
RECORDS_FILE = "traces.jsonl"
_PREFIX = "run_id="
_MAX_NAME = 200
_SAFE = re.compile(r"[A-Za-z0-9_.\-]+")
#: Marks a shortened name; never in an encoded id ("+" is percent-encoded).
_SHORTENED = "+"
_DIGEST_CHARS = 32


def run_dir_name(run_id: str) -> str:
    """The folder name for ``run_id``: always one plain path component of at most 200 ASCII
    characters (file systems take 255 bytes).

    Characters outside ``[A-Za-z0-9_.-]`` are percent-encoded (so ``/``, ``..`` segments and NUL
    cannot act as path syntax) and the ``run_id=`` prefix means the name is never ``.`` or
    ``..``. An id too long for that keeps its first characters, then ``+`` and a digest of the
    whole id, so distinct ids keep distinct folders; the records keep the full id, and
    :func:`run_id_from_dir` reads it from them.
    """
    if not isinstance(run_id, str) or not run_id:
        raise UnsafeRunIdError(f"run_id: expected a non-empty string, got {run_id!r}")
    if _SAFE.fullmatch(run_id):
        encoded = run_id
    else:
        try:
            encoded = quote(run_id, safe="")
        except UnicodeEncodeError:
            raise UnsafeRunIdError(
                f"run_id: expected text that encodes as UTF-8, got {run_id!r} (lone surrogates)"
            ) from None
    name = _PREFIX + encoded
    if len(name) > _MAX_NAME:
        import hashlib  # here: only for over-long run ids, and it costs import time

        digest = hashlib.sha256(run_id.encode()).hexdigest()[:_DIGEST_CHARS]
        head = encoded[: _MAX_NAME - len(_PREFIX) - len(_SHORTENED) - _DIGEST_CHARS]
        cut = head.rfind("%", len(head) - 2)
        if cut >= 0:  # not in the middle of a %XX escape
            head = head[:cut]
        name = f"{_PREFIX}{head}{_SHORTENED}{digest}"
    return name


def run_id_from_dir(entry: str | os.PathLike[str]) -> str | None:
    """The run id of a run folder (its name or its path), or None if it is not one. A
    shortened name (see :func:`run_dir_name`) holds only part of the id: given the folder's
    path, the full id is read from its records; given the name alone, it is None."""
    name = entry if isinstance(entry, str) else os.path.basename(os.fspath(entry))
    if not name.startswith(_PREFIX):
        return None
    if _SHORTENED not in name:
        return unquote(name[len(_PREFIX) :])
    if isinstance(entry, str):
        return None
    run_id = _first_run_id(Path(entry) / RECORDS_FILE)
    return run_id if run_id is not None and run_dir_name(run_id) == name else None


def _first_run_id(path: Path) -> str | None:
    """The run id of the first record in a traces.jsonl file, reading no further."""
    at = F_RUN_ID
    try:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict) and "fields" in value:
                    fields = value["fields"]
                    at = fields.index("run_id") if "run_id" in fields else -1
                elif isinstance(value, list) and 0 <= at < len(value):
                    run_id = value[at]
                    return run_id if isinstance(run_id, str) else None
    except OSError:
        return None
    return None


def run_dir(base: Path, run_id: str) -> Path:
    """``base / run_dir_name(run_id)``, checked to sit directly inside ``base``."""
    target = base / run_dir_name(run_id)
    if target.parent.resolve() != base.resolve() or target.name in ("", ".", ".."):
        raise UnsafeRunIdError(f"run_id: {run_id!r} would leave the log folder {str(base)!r}")
    return target


_prefixes: dict[tuple[str, str, str | None, str | None, str | None], str] = {}
_origins: dict[tuple[str | None, int | None], str] = {}
#: The nanosecond the last second seen starts at, and its date with a trailing "."; at first a
#: start no clock reading is within a second of.
_second: tuple[int, str] = (-(1 << 100), "")
_CACHE_MAX = 4096
_UNSET = object()
#: "000" to "999": the readable lines' microseconds are two of these.
_DIGITS3 = tuple(f"{i:03d}" for i in range(1000))


def _safe(text: str, newlines: bool = True) -> str:
    """``text`` for the readable files: code points UTF-8 cannot hold, and every character that
    acts on a terminal (ESC, bare CR, BEL, backspace, other C0/C1 controls, bidi overrides),
    written visibly escaped, so ``cat`` or ``tail -f`` of the file shows logged text as text.
    The JSON lines keep the exact text."""
    return escape_terminal(clean_text(text), newlines=newlines)


def _prefix(run_id: str, level: str, wf: str | None, job: str | None, stage: str | None) -> str:
    """`` (run) [INFO] wf/job/stage: ``, made once per run, level and names."""
    key = (run_id, level, wf, job, stage)
    prefix = _prefixes.get(key)
    if prefix is None:
        joined = "/".join(n for n in (wf, job, stage) if n)
        prefix = _safe(f" ({run_id}) [{level}] " + (joined + ": " if joined else ""), False)
        if len(_prefixes) >= _CACHE_MAX:
            _prefixes.clear()
        _prefixes[key] = prefix
    return prefix


def _origin(filename: str | None, lineno: int | None) -> str:
    """`` (file.py:12)``, made once per call site."""
    key = (filename, lineno)
    origin = _origins.get(key)
    if origin is None:
        origin = _safe(f" ({filename.rpartition('/')[2]}:{lineno})", False) if filename else ""
        if len(_origins) >= _CACHE_MAX:
            _origins.clear()
        _origins[key] = origin
    return origin


def _text(recs: Iterable[RecordValues]) -> str:
    """Readable lines, one a record:
    ``2026-01-02 03:04:05.000006 (run) [INFO] wf/job/stage: message (file.py:12)``

    Runs on the file sink's worker, holding the GIL, and is that worker's largest cost: one
    loop over the batch (no call per record), each field read by its named position (a tuple
    of them a record cost a third of the loop), the date made once a second, the part before
    the message and the part after it each formatted once and reused.
    """
    global _second
    base, date = _second  # the nanosecond the date's second starts at, and the date
    prefixes, origins, digits = _prefixes, _origins, _DIGITS3
    lines: list[str] = []
    append = lines.append
    # The previous record's prefix and origin, reused while the next has the same names (the
    # same objects, as records of one trace do) or the same call site: cheaper than the caches.
    p_run: Any = _UNSET
    p_level = p_wf = p_job = p_stage = o_file = o_line = p_run
    prefix = origin = ""
    for rec in recs:
        # Nanoseconds into the date's second: one subtraction of the clock's big numbers, and
        # the rest on numbers below 10**9 (each a single digit of CPython's ints).
        offset = rec[F_TIME_NS] - base
        if not 0 <= offset < 1_000_000_000:
            sec = rec[F_TIME_NS] // 1_000_000_000
            base, date = sec * 1_000_000_000, time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(sec))
            offset = rec[F_TIME_NS] - base
        msg = rec[F_MESSAGE]
        if not msg.isprintable():  # control characters shown escaped, lines indented
            msg = _safe(msg).replace("\n", "\n    ")
        if (
            rec[F_RUN_ID] is not p_run
            or rec[F_LEVEL] is not p_level
            or rec[F_WORKFLOW_NAME] is not p_wf
            or rec[F_JOB_NAME] is not p_job
            or rec[F_STAGE_NAME] is not p_stage
        ):
            p_run, p_level = rec[F_RUN_ID], rec[F_LEVEL]
            p_wf, p_job, p_stage = rec[F_WORKFLOW_NAME], rec[F_JOB_NAME], rec[F_STAGE_NAME]
            prefix = prefixes.get((p_run, p_level, p_wf, p_job, p_stage)) or _prefix(
                p_run, p_level, p_wf, p_job, p_stage
            )
        if rec[F_FILENAME] is not o_file or rec[F_LINENO] != o_line:
            o_file, o_line = rec[F_FILENAME], rec[F_LINENO]
            origin = origins.get((o_file, o_line)) or _origin(o_file, o_line)
        # The microseconds as two zero-padded halves from a table: a sixth of the cost of the
        # format spec ``:06d``, and a fifth less than slicing str() of a 7-digit number.
        micros = offset // 1000
        append(f"{date}{digits[micros // 1000]}{digits[micros % 1000]}{prefix}{msg}{origin}\n")
        if rec[F_EXC_TRACEBACK]:
            tb = _safe(rec[F_EXC_TRACEBACK]).rstrip("\n").replace("\n", "\n    ")
            append(f"    {tb}\n")
    _second = (base, date)
    return "".join(lines)


class _RunFiles:
    __slots__ = ("err", "out", "records")

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self.records = os.open(folder / RECORDS_FILE, flags, 0o644)
        self.out = os.open(folder / "stdout.txt", flags, 0o644)
        self.err = os.open(folder / "stderr.txt", flags, 0o644)

    def close(self) -> None:
        for fd in (self.records, self.out, self.err):
            os.close(fd)


#: The fields of each array in traces.jsonl, in order.
RECORD_FIELDS: tuple[str, ...] = Record._fields[:F_SIZE]  # all but the in-memory size estimate
#: Version 2: a record id may be a number, the counter part of an id whose prefix the latest
#: ``{"id_prefix": ...}`` line gives (each batch starts with one). Version 1 held whole ids.
HEADER = dumps({"format": "workflow-traces", "version": 2, "fields": list(RECORD_FIELDS)})


def _write_all(fd: int, data: bytes, header: bytes = b"") -> None:
    if not data:
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        if header and os.fstat(fd).st_size == 0:
            data = header + data  # the first writer of a new file, whichever process it is
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_records(path: Path) -> list[Record]:
    """The records in a traces.jsonl file, in file order. Lines that do not parse (a line cut
    short by SIGKILL) are skipped."""
    fields: tuple[str, ...] = RECORD_FIELDS
    at: int | None = F_RECORD_ID
    prefix = ""
    records: list[Record] = []
    with open(path, "rb") as fh:
        for line in fh:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, list):
                try:
                    if at is not None and type(value[at]) is int:
                        value[at] = prefix + str(value[at])
                    records.append(_from_values(fields, value))
                except (TypeError, ValueError, IndexError):
                    continue
            elif isinstance(value, dict) and "id_prefix" in value:
                prefix = str(value["id_prefix"])
            elif isinstance(value, dict) and "fields" in value:
                fields = tuple(value["fields"])
                at = fields.index("record_id") if "record_id" in fields else None
    return records


def _from_values(fields: tuple[str, ...], values: list[Any]) -> Record:
    if fields == RECORD_FIELDS and len(values) == len(fields):
        return Record(*values, size=256)  # type: ignore[misc]
    known = set(Record._fields)
    data = {k: v for k, v in zip(fields, values, strict=False) if k in known}
    return Record(**data)


_run_id_of = itemgetter(F_RUN_ID)
_is_err_of = itemgetter(F_IS_ERR)
_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


def _id_prefix_line() -> bytes:
    """The line that gives this process's record id prefix to the numbered ids after it."""
    global _prefix_line
    if _prefix_line[0] != _record._id_prefix:  # made once per process
        _prefix_line = (_record._id_prefix, dumps({"id_prefix": _record._id_prefix}) + b"\n")
    return _prefix_line[1]


_prefix_line: tuple[str, bytes] = ("", b"")


def _json_lines(recs: Sequence[RecordValues]) -> bytes:
    """The id prefix line, then one JSON array per record, a line each. Arrays, not objects:
    several times cheaper to encode on the worker. A plain tuple's record id is written as the
    number it holds (see ``_record``), the prefix line makes it whole for the reader.

    Each line is appended to one buffer as soon as it is made. Joining a list of them instead
    kept thousands of orjson's results alive at once, and that cost five times the encoding.
    """
    buf = bytearray(_id_prefix_line())
    try:
        for rec in recs:
            buf += _dumps(rec[:F_SIZE], option=_NEWLINE)
    except (TypeError, RecursionError):  # odd extras: encode each record the safe way
        buf = bytearray(_id_prefix_line())
        for rec in recs:
            buf += dumps(rec[:F_SIZE]) + b"\n"
    return bytes(buf)


class FileExporter(Exporter):
    """Writes batches into the per-run folders under ``base``."""

    #: Batches hold plain tuples of a record's values (see Channel._take).
    takes_values = True
    #: A backlog comes up to 16 buffers at a time, written with one write per file.
    group = 16

    def __init__(self, base: Path, max_open_runs: int = 64) -> None:
        self.base = base
        self.name = f"file:{base}"
        self._open: OrderedDict[str, _RunFiles] = OrderedDict()
        self._max_open = max_open_runs

    def _files(self, run_id: str) -> _RunFiles:
        files = self._open.get(run_id)
        if files is None:
            files = _RunFiles(run_dir(self.base, run_id))
            self._open[run_id] = files
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)[1].close()
        elif os.fstat(files.records).st_nlink == 0:
            # The run's files were removed (say, its folder deleted or replaced): writes to the
            # old descriptors would vanish without an error. Open them again where they belong;
            # if that fails, the batch fails and is reported.
            del self._open[run_id]
            files.close()
            return self._files(run_id)
        else:
            self._open.move_to_end(run_id)
        return files

    def export(self, batch: Sequence[RecordValues]) -> None:
        # The per-record work runs in C where it can (map, itemgetter, orjson): the worker holds
        # the GIL for all of its Python work, which the caller and other sinks then wait for.
        if len(set(map(_run_id_of, batch))) <= 1:
            groups: dict[str, Sequence[RecordValues]] = {batch[0][F_RUN_ID]: batch} if batch else {}
        else:
            groups = {}
            for rec in batch:
                groups.setdefault(rec[F_RUN_ID], []).append(rec)  # type: ignore[attr-defined]
        for run_id, recs in groups.items():
            files = self._files(run_id)
            _write_all(files.records, _json_lines(recs), HEADER + b"\n")
            if any(map(_is_err_of, recs)):
                out = _text([rec for rec in recs if not rec[F_IS_ERR]])
                err = _text([rec for rec in recs if rec[F_IS_ERR]])
                _write_all(files.err, err.encode("utf-8", "backslashreplace"))
            else:
                out = _text(recs)
            _write_all(files.out, out.encode("utf-8", "backslashreplace"))

    def shutdown(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def after_fork(self) -> None:
        self._open = OrderedDict()


def _prepare_dir(path: str | os.PathLike[str], field: str) -> Path:
    base = Path(path)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{field}: cannot create folder {str(base)!r}: {exc.strerror}") from exc
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{field}: folder {str(base)!r} is not writable")
    return base


class WorkflowFileHandler(BufferedHandler):
    """Writes records into one folder per run under ``base_path``.

    ``buffer_size`` is in bytes: the worker writes once about that much is queued, and at least
    every ``flush_interval`` seconds.
    """

    def __init__(
        self,
        run_id: str,
        parent_run_id: str | None = None,
        base_path: str | os.PathLike[str] | None = None,
        extras: dict[str, Any] | None = None,
        *,
        buffer_size: int = 8192,
        flush_interval: float = 1.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        overflow: Overflow = "block",
        block_timeout: float = 1.0,
        fail_silently: bool = True,
        level: int = 0,
    ) -> None:
        check_positive("buffer_size", buffer_size)
        run_dir_name(run_id)  # refuse an unusable run_id now, not on the worker
        extras = extras or {}
        path = base_path or extras.get("path") or DEFAULT_FILE_PATH
        self.log_dir = _prepare_dir(path, "path")
        super().__init__(
            FileExporter(self.log_dir),
            run_id=run_id,
            parent_run_id=parent_run_id,
            extras=extras,
            batch_records=1 << 30,
            batch_bytes=buffer_size,
            flush_interval=flush_interval,
            queue_size=queue_size,
            queue_bytes=queue_bytes,
            overflow=overflow,
            block_timeout=block_timeout,
            fail_silently=fail_silently,
            level=level,
        )
        self.buffer_size = buffer_size
        self.flush_interval = flush_interval

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> WorkflowFileHandler:
        """The handler for a validated ``FileConfig`` and a ``SinkContext`` (the sink
        registry's builder)."""
        return from_sink_config(cls, cfg, ctx, "path")

    @property
    def run_dir(self) -> Path:
        """This handler's run folder."""
        return run_dir(self.log_dir, self.run_id)
