"""A batch's rows as ``INSERT`` statements for the SQLite sink, every value a bound parameter.

The sink's worker holds the GIL while it builds the parameters and while the sqlite3 module
binds them, and that time is taken from the caller and from the other sinks. So there are two
statement forms, and the cheaper one is used whenever it fits:

- **Shared context** (the common case): consecutive records of one scope have the same run id,
  parent run id, workflow name, kind, trace id and span id. A stretch of such records is one
  statement that binds those six values once, and per row only what changes: the record id's
  counter, time, level number, message and detail (the detail too is bound once when every row
  of the stretch has the same, as a loop's lines do). SQLite joins this process's id prefix to
  the counter in its own code, without the GIL. Building and binding four or five values a row
  instead of eleven cost the worker 30 to 40% less (measured).
- **Row by row**: a batch whose scopes change every few records binds all eleven columns of
  each row in one multi-row ``VALUES`` statement.

Not ``executemany``: it releases and retakes the GIL around every row, and while another thread
(the file sink's worker, the caller) holds the GIL, each retake waits for the interpreter's
switch interval. One statement of many rows takes the GIL once to bind and releases it once for
SQLite's work, which then runs beside the other threads.

Statements come in sizes of powers of two below the largest (fewer rows when SQLite allows
fewer parameters), so the connection's statement cache holds every shape used.

A batch whose records bring a trace id, span id and run id not written before (by this
``Statements``) also gets an ``INSERT OR IGNORE`` into ``trace_spans`` (see ``schema``): one
statement for a new scope, none for the records after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, compress, pairwise
from operator import itemgetter, ne
from typing import Any

import orjson

from workflow_traces.core import record as _record
from workflow_traces.core.record import (
    F_KIND,
    F_LEVELNO,
    F_MESSAGE,
    F_PARENT_RUN_ID,
    F_RECORD_ID,
    F_RUN_ID,
    F_SPAN_ID,
    F_TIME_NS,
    F_TRACE_ID,
    F_WORKFLOW_NAME,
    Record,
    RecordValues,
)
from workflow_traces.exporters.encode import clean_text, dumps
from workflow_traces.exporters.sqlite.schema import DETAIL_FIELDS, INSERT_COLUMNS, SPAN_COLUMNS

__all__ = ["Statements", "flat_rows"]

_INSERT_INTO = f"INSERT OR IGNORE INTO traces ({', '.join(INSERT_COLUMNS)}) "
_WIDTH = len(INSERT_COLUMNS)
_ROW = "(" + ",".join("?" for _ in INSERT_COLUMNS) + ")"

#: The shared form binds these columns once a statement, as ``?1`` to ``?6``, then this
#: process's record id prefix (``?7``) and, when every row of the stretch has the same detail,
#: that detail (``?8``). Each row binds the others, in INSERT_COLUMNS order: the record id, time,
#: level number and message, and the detail unless it is shared.
_SHARED_COLUMNS = ("run_id", "parent_run_id", "workflow_name", "kind", "trace_id", "span_id")
_SHARED_OF = itemgetter(*(Record._fields.index(name) for name in _SHARED_COLUMNS))
_PER_ROW = tuple(c for c in INSERT_COLUMNS if c not in _SHARED_COLUMNS)
#: Values bound once a statement at most: the context, the id prefix and a shared detail.
_ONCE = len(_SHARED_COLUMNS) + 2
#: Where a context (``_SHARED_OF``'s values) holds each of trace_spans' columns.
_TRACE_AT = _SHARED_COLUMNS.index("trace_id")
_SPAN_OF = itemgetter(*(_SHARED_COLUMNS.index(name) for name in SPAN_COLUMNS))
_SPAN_ROW = "(" + ",".join("?" * len(SPAN_COLUMNS)) + ")"
_SPANS_INTO = f"INSERT OR IGNORE INTO trace_spans ({', '.join(SPAN_COLUMNS)}) VALUES "  # noqa: S608 - our column names only
#: Contexts remembered as written; past this many the memory starts over (a few rows written
#: again, each ignored).
_KNOWN_MAX = 4096


def _select(shared_detail: bool) -> str:
    """The shared form's select list over ``VALUES`` rows (their columns are named column1,
    column2, ...). A plain tuple's record id is its counter alone (see core.record), joined to
    the prefix here; a Record's is whole already."""
    own = [c for c in _PER_ROW if not (shared_detail and c == "detail")]
    parts = []
    for name in INSERT_COLUMNS:
        if name in _SHARED_COLUMNS:
            parts.append(f"?{_SHARED_COLUMNS.index(name) + 1}")
        elif name == "detail" and shared_detail:
            parts.append("?8")
        else:
            value = f"column{own.index(name) + 1}"
            if name == "record_id":
                value = f"CASE WHEN typeof({value}) = 'integer' THEN ?7 || {value} ELSE {value} END"
            parts.append(value)
    return f"SELECT {', '.join(parts)} FROM (VALUES "  # noqa: S608 - our column names only


#: A stretch of one context shorter than this goes row by row: each statement is one more
#: release and retake of the GIL.
MIN_SHARED = 64

#: A record's DETAIL_FIELDS, in order.
_detail_of = itemgetter(*(Record._fields.index(name) for name in DETAIL_FIELDS))
#: Each of a row's own values but the detail, one getter a column (the rows are zipped with
#: their details).
_ROW_COLUMNS = tuple(
    itemgetter(Record._fields.index(name)) for name in _PER_ROW if name != "detail"
)
_decode = bytes.decode
_dumps = orjson.dumps


def _interleave(n: int, columns: Sequence[Iterable[Any]]) -> list[Any]:
    """The rows of ``columns`` (``n`` values each) as one flat list, row after row. Each column
    goes into its stride by one slice assignment, in C: half the cost of flattening a tuple a
    row (0.08 against 0.16 µs a row of four, measured)."""
    width = len(columns)
    flat: list[Any] = [None] * (n * width)
    for at, column in enumerate(columns):
        flat[at::width] = column
    return flat


def _details(batch: Sequence[RecordValues]) -> list[str] | str:
    """Each record's detail column, JSON text (in C, through map), or the one text when every
    record's detail is the same (records from one call site on one thread, as in a loop).
    Decoded as soon as each is made: orjson's bytes are allocated outside Python's small-object
    allocator, and keeping a batch of them alive costs several times the encoding (measured)."""
    details = list(map(_detail_of, batch))
    try:
        same = (
            bool(details)
            and details[-1] == details[0]
            and details.count(details[0]) == len(details)
        )
    except Exception:  # extras whose == raises (an array, say): compare no further
        same = False
    try:
        if same:
            return _decode(_dumps(details[0]))
        return list(map(_decode, map(_dumps, details)))
    except (TypeError, RecursionError):  # odd extras: encode each row the safe way
        return [dumps(detail).decode("utf-8") for detail in details]


def flat_rows(batch: Sequence[RecordValues]) -> list[Any]:
    """``batch``'s rows as one flat list of INSERT_COLUMNS values, row after row (the row by
    row form). Missing parent run id, workflow name, trace and span ids are stored as "" (the
    sqlite3 module binds None through a slower path); the view gives them back as NULL."""
    details = _details(batch)
    if isinstance(details, str):
        details = [details] * len(batch)
    params: list[Any] = []
    extend = params.extend
    prefix = _record._id_prefix
    for rec, detail in zip(batch, details, strict=True):
        rid = rec[F_RECORD_ID]
        extend(
            (
                prefix + str(rid) if type(rid) is int else rid,
                rec[F_TIME_NS],
                rec[F_LEVELNO],
                rec[F_MESSAGE],
                rec[F_RUN_ID],
                rec[F_PARENT_RUN_ID] or "",
                rec[F_WORKFLOW_NAME] or "",
                rec[F_KIND],
                rec[F_TRACE_ID] or "",
                rec[F_SPAN_ID] or "",
                detail,
            )
        )
    return params


def _stretches(context: list[tuple[Any, ...]]) -> list[tuple[int, int]] | None:
    """A batch cut where its records' shared ``context`` changes, as (start, end) pairs; None
    when the stretches are too short on average for the shared form to pay."""
    n = len(context)
    if context.count(context[0]) == n:  # one scope's records: the common case, in C
        return [(0, n)]
    cuts = list(compress(range(1, n), map(ne, context[1:], context[:-1])))
    if (len(cuts) + 1) * MIN_SHARED > n:
        return None
    bounds = [0, *cuts, n]
    return list(pairwise(bounds))


class Statements:
    """The statements that write a batch: shared-context statements where stretches of one
    scope are long, else row by row ones; at most ``rows`` rows each, and no more parameters
    than ``max_params``."""

    def __init__(self, rows: int, max_params: int) -> None:
        self.row_sizes = _sizes(max(1, min(rows, max_params // _WIDTH)))
        self._row_sql = {n: _INSERT_INTO + "VALUES " + ",".join([_ROW] * n) for n in self.row_sizes}
        #: The shared forms by how many values a row binds: 5, or 4 when the detail is shared.
        self._shared: dict[int, tuple[list[int], dict[int, str]]] = {}
        self._shared_fits = (max_params - _ONCE) // len(_PER_ROW) >= MIN_SHARED
        self._max_spans = max(1, max_params // len(SPAN_COLUMNS))
        #: Contexts whose trace_spans row is written (or in the statements last made).
        self._known: set[tuple[Any, ...]] = set()
        for width, shared_detail in ((len(_PER_ROW), False), (len(_PER_ROW) - 1, True)):
            sizes = _sizes(max(1, min(rows, (max_params - _ONCE) // width)))
            head = _INSERT_INTO + _select(shared_detail)
            marks = "(" + ",".join("?" * width) + ")"
            self._shared[width] = (sizes, {n: head + ",".join([marks] * n) + ")" for n in sizes})

    def of(self, batch: Sequence[RecordValues]) -> list[tuple[str, list[Any]]]:
        """(sql, parameters) pairs that write ``batch``, in order. If they fail, call
        :meth:`forget` before the next batch."""
        if not batch:
            return []
        context = list(map(_SHARED_OF, batch))
        stretches = _stretches(context) if self._shared_fits else None
        if stretches is None:
            return self.rows(flat_rows(batch)) + self._spans(_distinct(context))
        out: list[tuple[str, list[Any]]] = []
        for start, end in stretches:
            part = batch[start:end]
            shared = [v if v is not None else "" for v in context[start]]
            shared.append(_record._id_prefix)
            details = _details(part)
            columns: list[Iterable[Any]] = [map(column, part) for column in _ROW_COLUMNS]
            if isinstance(details, str):
                shared.append(details)
            else:
                columns.append(details)
            values = _interleave(len(part), columns)
            width = len(_PER_ROW) - isinstance(details, str)
            sizes, sql = self._shared[width]
            out.extend(_cut(values, width, sizes, sql, shared))
        out.extend(self._spans(_distinct(context[start] for start, _ in stretches)))
        return out

    def _spans(self, contexts: set[tuple[Any, ...]]) -> list[tuple[str, list[Any]]]:
        """The trace_spans rows of ``contexts`` not written yet (those with a trace id)."""
        new = contexts - self._known
        if not new:
            return []
        if len(self._known) + len(new) > _KNOWN_MAX:
            self._known.clear()
        self._known |= new
        rows = sorted({tuple(v or "" for v in _SPAN_OF(c)) for c in new if c[_TRACE_AT]})
        out: list[tuple[str, list[Any]]] = []
        for at in range(0, len(rows), self._max_spans):
            part = rows[at : at + self._max_spans]
            sql = _SPANS_INTO + ",".join([_SPAN_ROW] * len(part))
            out.append((sql, list(chain.from_iterable(part))))
        return out

    def forget(self) -> None:
        """The statements last made were not all written: write every trace_spans row again
        (each one already there is ignored)."""
        self._known.clear()

    def rows(self, params: list[Any]) -> list[tuple[str, list[Any]]]:
        """``params`` (rows of INSERT_COLUMNS values, flat) as row by row statements."""
        return _cut(params, _WIDTH, self.row_sizes, self._row_sql, [])

    @staticmethod
    def cleaned(statements: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
        """``statements`` with text that is not valid UTF-8 (lone surrogates) escaped."""
        return [
            (sql, [clean_text(v) if isinstance(v, str) else v for v in params])
            for sql, params in statements
        ]


def _distinct(contexts: Iterable[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """The distinct contexts. One holding a value that cannot be hashed is left out, and its
    trace_spans row with it (the trace path's context values are text or None; this guards
    records made by hand)."""
    contexts = list(contexts)
    try:
        return set(contexts)
    except TypeError:
        out = set()
        for context in contexts:
            try:
                out.add(context)
            except TypeError:
                continue
        return out


def _sizes(most: int) -> list[int]:
    """``most`` and the powers of two below it, largest first."""
    return sorted({most} | {1 << i for i in range(most.bit_length()) if 1 << i < most})[::-1]


def _cut(
    values: list[Any], width: int, sizes: list[int], sql: dict[int, str], shared: list[Any]
) -> list[tuple[str, list[Any]]]:
    """``values`` (rows of ``width`` values, flat) in statements of the given sizes, largest
    first, each starting with the ``shared`` values."""
    out: list[tuple[str, list[Any]]] = []
    start, total = 0, len(values) // width
    for n in sizes:
        while total - start >= n:
            part = values[start * width : (start + n) * width]
            out.append((sql[n], shared + part if shared else part))
            start += n
    return out
