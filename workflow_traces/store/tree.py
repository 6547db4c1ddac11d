"""A run read back as a tree: workflow → jobs → stages, built from its lifecycle events.

Each ``started`` event opens a node; the next end event (succeeded, failed, skipped, cancelled)
of the same workflow/job/stage closes it. A node that started and never ended is "unfinished",
never "succeeded". An end event with no start (a job skipped because what it needs failed)
makes a node of its own. A retried stage appears once per attempt, in order, with ``attempt``
counting them. Log lines go to the node whose names they carry, at the time they were made.

Only records are read, so the SQLite, file and Elasticsearch stores give the same tree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from workflow_traces.core.record import _EPOCH, Record
from workflow_traces.store.status import END_EVENTS, jobs_status
from workflow_traces.text import escape_terminal

__all__ = ["COLOURS", "Node", "build_tree", "nest_child", "paint", "render_tree"]

_KINDS = ("workflow", "job", "stage")

Key = tuple[str, str | None, str | None, str | None]


def _dt(time_ns: int) -> datetime:
    from datetime import timedelta

    return _EPOCH + timedelta(microseconds=time_ns // 1000)


@dataclass
class Node:
    """One workflow, job or stage of a run (one attempt of it, for a retried stage).

    ``status`` is the end event's ("succeeded", "failed", "skipped", "cancelled"),
    "unfinished" when it started and never ended, or None for a run without lifecycle events.
    ``records`` are the node's own log lines (not its children's); ``events`` its lifecycle
    events; ``error`` is "ExcType: message" from a failed or cancelled end event.
    """

    name: str
    kind: str
    status: str | None
    started: datetime | None = None
    ended: datetime | None = None
    duration: float | None = None
    records: list[Record] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    error: str | None = None
    attempt: int = 1
    #: For a child run nested in its parent's tree (``kind == "run"``): its run id.
    run_id: str | None = None

    @property
    def open(self) -> bool:
        return self.status == "unfinished"

    def walk(self) -> Iterator[Node]:
        """This node, then every node below it, depth first, in order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str, kind: str | None = None) -> Node | None:
        """The last node (the last attempt) with this name and, if given, kind; or None."""
        found = None
        for node in self.walk():
            if node.name == name and (kind is None or node.kind == kind):
                found = node
        return found

    def find_all(self, name: str, kind: str | None = None) -> list[Node]:
        """Every node with this name (and kind): one per attempt."""
        return [n for n in self.walk() if n.name == name and (kind is None or n.kind == kind)]


def _key(kind: str, rec: Record) -> Key:
    if kind == "workflow":
        return (kind, rec.workflow_name, None, None)
    if kind == "job":
        return (kind, rec.workflow_name, rec.job_name, None)
    return (kind, rec.workflow_name, rec.job_name, rec.stage_name)


def _name(kind: str, rec: Record) -> str:
    value = {"workflow": rec.workflow_name, "job": rec.job_name, "stage": rec.stage_name}[kind]
    return value if value is not None else "?"


class _Builder:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.roots: list[Node] = []
        self.open: dict[Key, list[tuple[Node, int]]] = {}
        self.latest: dict[Key, Node] = {}
        self.count: dict[tuple[Key, int], int] = {}
        self.stray: list[Record] = []
        self.start_ns: dict[int, int] = {}

    def _lookup(self, key: Key) -> Node | None:
        stack = self.open.get(key)
        if stack:
            return stack[-1][0]
        return self.latest.get(key)

    def _parent(self, kind: str, rec: Record) -> Node | None:
        if kind == "workflow":
            return None
        if kind == "stage" and rec.job_name is not None:
            job = self._lookup(("job", rec.workflow_name, rec.job_name, None))
            if job is not None:
                return job
        return self._lookup(("workflow", rec.workflow_name, None, None)) or (
            self.roots[-1] if self.roots else None
        )

    def _attach(self, kind: str, rec: Record, node: Node) -> None:
        parent = self._parent(kind, rec)
        siblings = parent.children if parent is not None else self.roots
        key = _key(kind, rec)
        slot = (key, id(parent))
        node.attempt = self.count.get(slot, 0) + 1
        self.count[slot] = node.attempt
        declared = (rec.extras or {}).get("attempt")
        if type(declared) is int:  # the runner numbered its attempts (Prefect: .map runs
            node.attempt = declared  # same-name stages side by side, each its attempt 1)
        siblings.append(node)
        self.latest[key] = node

    def event(self, rec: Record) -> None:
        kind = rec.scope or "stage"
        key = _key(kind, rec)
        if rec.event == "started":
            node = Node(_name(kind, rec), kind, "unfinished", started=_dt(rec.time_ns))
            node.events.append(rec)
            self._attach(kind, rec, node)
            self.open.setdefault(key, []).append((node, rec.thread))
            self.start_ns[id(node)] = rec.time_ns
            return
        if rec.event not in END_EVENTS:
            return
        stack = self.open.get(key) or []
        # The scope that ends is the one this thread opened last; else the last one opened.
        index = next(
            (i for i in range(len(stack) - 1, -1, -1) if stack[i][1] == rec.thread),
            len(stack) - 1,
        )
        if index >= 0:
            node = stack.pop(index)[0]
        else:
            node = Node(_name(kind, rec), kind, None)
            self._attach(kind, rec, node)
        node.status = rec.event
        node.ended = _dt(rec.time_ns)
        node.events.append(rec)
        if rec.duration is not None:
            node.duration = rec.duration
        elif id(node) in self.start_ns:
            node.duration = (rec.time_ns - self.start_ns[id(node)]) / 1e9
        if rec.exc_type is not None:
            node.error = f"{rec.exc_type}: {rec.exc_message}"

    def log(self, rec: Record) -> None:
        keys: list[Key] = []
        if rec.stage_name is not None:
            keys.append(("stage", rec.workflow_name, rec.job_name, rec.stage_name))
        if rec.job_name is not None:
            keys.append(("job", rec.workflow_name, rec.job_name, None))
        keys.append(("workflow", rec.workflow_name, None, None))
        for key in keys:
            node = self._lookup(key)
            if node is not None:
                node.records.append(rec)
                return
        self.stray.append(rec)


def build_tree(records: Sequence[Record], run_id: str = "?") -> Node:
    """The tree of one run's records (in time order). The root is the workflow node; a run
    without workflow events (or with several) gets a root made for it, whose status is None
    when the run has no lifecycle events at all."""
    builder = _Builder(run_id)
    for rec in records:
        if rec.kind == "event" and rec.scope in _KINDS:
            builder.event(rec)
        else:
            builder.log(rec)
    roots = builder.roots
    if len(roots) == 1 and roots[0].kind == "workflow":
        root = roots[0]
        root.records[:0] = builder.stray
        return root
    names = [r.workflow_name for r in records if r.workflow_name]
    workflows = [r for r in roots if r.kind == "workflow"]
    last = workflows[-1] if workflows else None
    # Without workflow events (a Prefect subflow), the status comes from the jobs.
    status = last.status if last is not None else jobs_status(n.status for n in roots)
    root = Node(
        names[0] if names else run_id,
        "workflow",
        status,
        started=_dt(records[0].time_ns) if records else None,
        ended=_dt(records[-1].time_ns) if records and status not in (None, "unfinished") else None,
        children=roots,
        records=builder.stray,
    )
    if status not in (None, "unfinished") and root.started and root.ended:
        root.duration = (root.ended - root.started).total_seconds()
    return root


def _active(node: Node, at: datetime) -> Node | None:
    """The deepest job or stage under ``node`` running at ``at`` (the latest started)."""
    best: Node | None = None
    for child in node.children:
        if child.kind not in ("job", "stage") or child.started is None or child.started > at:
            continue
        if child.ended is not None and child.ended < at:
            continue
        best = child
    if best is None:
        return None
    return _active(best, at) or best


def nest_child(root: Node, child: Node) -> None:
    """Put a child run's node under the job or stage of ``root`` that was running when it
    started (else under ``root``), among that node's children in start order."""
    parent = (_active(root, child.started) if child.started else None) or root
    at = child.started or _EPOCH
    index = len(parent.children)
    while index > 0 and (parent.children[index - 1].started or _EPOCH) > at:
        index -= 1
    parent.children.insert(index, child)


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}min"


def _fmt_offset(seconds: float) -> str:
    return "+" + (_fmt_duration(seconds) if seconds > 0 else "0s")


def _clip(text: str, limit: int) -> str:
    text = escape_terminal(text, newlines=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: ANSI colours of the statuses, used only when asked (a terminal, NO_COLOR unset).
COLOURS = {
    "succeeded": "32",
    "failed": "31",
    "unfinished": "33",
    "cancelled": "35",
    "skipped": "90",
}


def paint(text: str, status: str | None, colour: bool) -> str:
    code = COLOURS.get(status or "") if colour else None
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def _line(node: Node, show_attempt: bool, limit: int, origin: datetime | None, colour: bool) -> str:
    head = f"{node.kind} {_clip(node.name, limit)}"
    if node.run_id is not None:
        head += f" [{_clip(node.run_id, limit)}]"
    if show_attempt:
        head += f" (attempt {node.attempt})"
    parts = [head, paint(node.status or "-", node.status, colour)]
    duration = _fmt_duration(node.duration)
    if duration:
        parts.append(duration)
    if origin is not None and node.started is not None and node.kind != "workflow":
        parts.append(_fmt_offset(max(0.0, (node.started - origin).total_seconds())))
    text = "  ".join(parts)
    if node.error:
        text += f"  [{_clip(node.error, limit)}]"
    return text


def _when(item: Node | Record) -> datetime:
    if isinstance(item, Node):
        return item.started or item.ended or _EPOCH
    return item.timestamp


def render_tree(node: Node, *, logs: bool = False, width: int = 120, colour: bool = False) -> str:
    """The tree as text, one node a line with its status, duration and start offset from the
    run's start (``+1.25s``); with ``logs``, each node's own log lines too. Logged text is
    escaped for the terminal (see ``escape_terminal``) and cut to ``width`` characters;
    ``colour`` paints the statuses with ANSI colours."""
    out: list[str] = []
    origin = node.started

    def emit(n: Node, prefix: str, branch: str, siblings: list[Node]) -> None:
        retried = any(s.attempt > 1 for s in siblings if s.kind == n.kind and s.name == n.name)
        out.append(prefix + branch + _line(n, retried, width, origin, colour))
        inner = prefix + {"": "", "└── ": "    "}.get(branch, "│   ")
        items: list[Node | Record] = [*n.records] if logs else []
        items.extend(n.children)
        if logs:  # log lines and child nodes in the order they happened
            items.sort(key=_when)
        for i, item in enumerate(items):
            tail = "└── " if i == len(items) - 1 else "├── "
            if isinstance(item, Node):
                emit(item, inner, tail, n.children)
            else:
                out.append(f"{inner}{tail}{item.level}: {_clip(item.message, width)}")

    emit(node, "", "", [node])
    return "\n".join(out)
