"""The record layout is written once: ``Record``'s fields (core/record.py). Everything else
follows from it or is proved here to agree with it:

- the ``F_*`` positions, one per field, in field order;
- the tuple builders of the caller's thread (the trace call, ``core.trace._log_call``, and the
  stdlib path, ``core.stdlib.log_record_values``): each writes one value per field, in order;
- no code indexes a record by a bare number outside the hot path (the rule below).
"""

from __future__ import annotations

import ast
import logging
import sys
from pathlib import Path
from typing import Any

from workflow_traces.core import record as _record
from workflow_traces.core.record import Record, as_record
from workflow_traces.core.stdlib import log_record_values
from workflow_traces.core.trace import Trace
from workflow_traces.pipeline.multi import MultiHandler

ROOT = Path(__file__).resolve().parents[2]
FIELDS = Record._fields


def test_each_field_has_its_position_and_no_position_is_left_over() -> None:
    positions = {n: v for n, v in vars(_record).items() if n.startswith("F_")}
    assert positions == {"F_" + name.upper(): i for i, name in enumerate(FIELDS)}
    assert set(positions) <= set(_record.__all__)
    # The hot path reads the size estimate as rec[-1] (see the rule below).
    assert positions["F_SIZE"] == len(FIELDS) - 1


def _builder_tuples(path: Path, function: str) -> list[ast.Tuple]:
    """The tuple literals that ``function`` (at any depth in ``path``) returns or assigns."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Tuple) and len(inner.elts) > 10:
                    found.append(inner)
    return found


def test_every_tuple_builder_writes_one_value_per_field() -> None:
    core = ROOT / "workflow_traces" / "core"
    builders = _builder_tuples(core / "trace.py", "log") + _builder_tuples(
        core / "stdlib.py", "log_record_values"
    )
    assert len(builders) == 2
    assert [len(t.elts) for t in builders] == [len(FIELDS)] * 2


def _check_fields(rec: Record, expected: dict[str, Any]) -> None:
    assert {k: getattr(rec, k) for k in expected} == expected


def test_the_trace_builder_puts_each_value_in_its_field() -> None:
    extras = {"workflow_name": "wf", "job_name": "job", "stage_name": "st", "team": "a"}
    trace = Trace("run-1", "parent-1", extras, MultiHandler("run-1"))
    line = sys._getframe().f_lineno + 1
    values = trace._record(30, "hello", True, ("KeyError", "k", "tb"), 1, queue=False)
    rec = as_record(values)
    _check_fields(
        rec,
        {
            "level": "WARNING",
            "levelno": 30,
            "message": "hello",
            "run_id": "run-1",
            "parent_run_id": "parent-1",
            "workflow_name": "wf",
            "job_name": "job",
            "stage_name": "st",
            "filename": __file__,
            "lineno": line,
            "func_name": "test_the_trace_builder_puts_each_value_in_its_field",
            "process": _record.process_id(),
            "is_err": True,
            "extras": {"team": "a"},
            "exc_type": "KeyError",
            "exc_message": "k",
            "exc_traceback": "tb",
            "kind": "log",
            "scope": None,
            "event": None,
            "status": None,
            "duration": None,
            "logger": None,
            "size": len("hello") + 256,
        },
    )
    assert rec.record_id.startswith(_record._id_prefix) and type(rec.time_ns) is int


def test_the_stdlib_builder_puts_each_value_in_its_field() -> None:
    lr = logging.LogRecord("my.logger", logging.ERROR, "/src/app.py", 42, "x=%s", (7,), None, "fn")
    values = log_record_values(lr, "run-2", "parent-2", ("wf", "job", "st"), {"team": "b"})
    _check_fields(
        as_record(values),
        {
            "time_ns": int(lr.created * 1e9),
            "level": "ERROR",
            "levelno": 40,
            "message": "x=7",
            "run_id": "run-2",
            "parent_run_id": "parent-2",
            "workflow_name": "wf",
            "job_name": "job",
            "stage_name": "st",
            "filename": "/src/app.py",
            "lineno": 42,
            "func_name": "fn",
            "is_err": True,
            "extras": {"team": "b"},
            "exc_type": None,
            "kind": "log",
            "event": None,
            "logger": "my.logger",
            "size": len("x=7") + 256,
        },
    )


# -- the rule: no numeric record subscripts outside the hot path -----------------------------------
#: Variable names that hold a record (a Record or its plain tuple of values) in this code base.
RECORD_NAMES = frozenset({"rec", "record", "values", "row_values"})
#: The hot path, where positions are literals for speed: the trace call (core/trace.py), the
#: record module itself, and the channel's caller side, which reads the size, the last field,
#: as ``rec[-1]`` (checked above: F_SIZE is the last position).
HOT_PATH = frozenset({"workflow_traces/core/trace.py", "workflow_traces/core/record.py"})
SIZE_ONLY = frozenset({"workflow_traces/pipeline/channel.py"})


def _number(node: ast.expr | None) -> int | None:
    """The int a subscript or slice bound spells as a literal (``3``, ``-1``), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return -node.operand.value
    return None


def numeric_record_subscripts(source: str) -> list[tuple[int, str]]:
    """Where ``source`` indexes a record by a bare number.

    Flagged: ``rec[3]``, ``rec[-1]``, ``rec[18:26]``, ``rec[:-1]`` on a variable named as a
    record is (RECORD_NAMES), and ``itemgetter(...)`` with a bare number among its arguments
    (the other way the code base indexes records). Not flagged: named positions
    (``rec[F_MESSAGE]``, ``rec[:F_SIZE]``), subscripts of anything else (``parts[0]``,
    ``self._errors[-1]``), and ``rec[index]`` where ``index`` comes from a table built from
    field names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in RECORD_NAMES):
                continue
            index = node.slice
            if isinstance(index, ast.Slice):
                numeric = any(_number(b) is not None for b in (index.lower, index.upper))
            else:
                numeric = _number(index) is not None
            if numeric:
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "itemgetter" and any(_number(a) is not None for a in node.args):
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_rule_finds_numeric_record_subscripts_and_nothing_else() -> None:
    bad = "rec[3]\nvalues[-1]\nrec[18:26]\nrec[:-1]\nitemgetter(0, F_RUN_ID)\n"
    assert [line for line, _ in numeric_record_subscripts(bad)] == [1, 2, 3, 4, 5]
    fine = "rec[F_MESSAGE]\nrec[:F_SIZE]\nparts[0]\nself._errors[-1]\nrec[index]\nrec.message\n"
    assert numeric_record_subscripts(fine) == []


def test_no_record_is_indexed_by_a_bare_number_outside_the_hot_path() -> None:
    offenders = {}
    files = sorted((ROOT / "workflow_traces").rglob("*.py")) + sorted(
        (ROOT / "integrations").rglob("*.py")
    )
    assert len(files) > 50
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in HOT_PATH:
            continue
        hits = numeric_record_subscripts(path.read_text())
        if rel in SIZE_ONLY:
            hits = [(n, text) for n, text in hits if not text.endswith("[-1]")]
            hits = [(n, text) for n, text in hits if text != "itemgetter(-1)"]
        if hits:
            offenders[rel] = hits
    assert offenders == {}, "use the F_* positions of core.record instead"
