"""The search side of :class:`~local_services.elasticsearch.LocalElasticsearch`:
queries, sorting, ``search_after``, ``_source`` filtering, aggregations and ``filter_path``.

It covers what our store sends and a little more, evaluated over Python dicts:

- queries: ``match_all``, ``match_none``, ``term``, ``terms``, ``ids``, ``exists``, ``range``,
  ``prefix``, ``bool`` (``must``/``filter``/``should``/``must_not``, ``minimum_should_match``);
- ``sort`` on fields (``asc``/``desc``, ``missing: _first/_last``), ``_doc`` and ``_id``,
  with ``search_after``; ``from`` and ``size``;
- aggregations: ``terms``, ``composite`` (terms sources, ``after``, ``missing_bucket``),
  ``min``, ``max``, ``sum``, ``avg``, ``value_count``, ``cardinality``, ``top_hits``, ``filter``.

Values are compared as stored in ``_source`` (no text analysis): a ``term`` query matches the
exact value, as it does on a keyword field.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "Doc",
    "SearchError",
    "compile_query",
    "filter_path",
    "filter_source",
    "get_values",
    "run_aggs",
    "search_docs",
]

#: (index name, _id, order of insertion, _source)
Doc = tuple[str, str, int, dict[str, Any]]


class SearchError(Exception):
    """A request this server cannot answer: becomes a 400 with ``type``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def get_values(source: Any, path: str) -> list[Any]:
    """Every value at dotted ``path`` (nested objects or dotted keys; arrays flattened)."""
    if not isinstance(source, dict):
        return []
    if path in source:
        return _flatten(source[path])
    head, dot, rest = path.partition(".")
    while dot:
        if head in source:
            value = source[head]
            items = value if isinstance(value, list) else [value]
            out: list[Any] = []
            for item in items:
                out.extend(get_values(item, rest))
            return out
        nxt, dot, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    return []


def _flatten(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(_flatten(item))
        return out
    return [value]


def _same(a: Any, b: Any) -> bool:
    if a == b and type(a) is not bool and type(b) is not bool:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    return str(a) == str(b)


def _one(body: Any, name: str) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise SearchError("parsing_exception", f"[{name}] query malformed, expected one field")
    return next(iter(body.items()))


def _term_value(spec: Any) -> Any:
    return spec.get("value") if isinstance(spec, dict) else spec


def _num(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            return value
    return value


def _in_range(value: Any, spec: dict[str, Any]) -> bool:
    value = _num(value)
    try:
        for op, given in spec.items():
            bound = _num(given)
            if (
                (op == "gt" and not value > bound)
                or (op == "gte" and not value >= bound)
                or (op == "lt" and not value < bound)
                or (op == "lte" and not value <= bound)
            ):
                return False
    except TypeError:
        return str(value) in spec.values()
    return True


def compile_query(query: Any) -> Callable[[Doc], bool]:
    """A predicate over documents for an Elasticsearch query (None = match all)."""
    if query is None:
        return lambda doc: True
    kind, body = _one(query, "query")
    if kind == "match_all":
        return lambda doc: True
    if kind == "match_none":
        return lambda doc: False
    if kind == "term":
        field, spec = _one(body, "term")
        want = _term_value(spec)
        if field == "_id":
            return lambda doc: doc[1] == str(want)
        return lambda doc: any(_same(v, want) for v in get_values(doc[3], field))
    if kind == "terms":
        items = {k: v for k, v in body.items() if k != "boost"}
        field, wanted = _one(items, "terms")
        if not isinstance(wanted, list):
            raise SearchError("parsing_exception", "[terms] query requires an array of values")
        if field == "_id":
            ids = {str(w) for w in wanted}
            return lambda doc: doc[1] in ids
        hashable = {w for w in wanted if not isinstance(w, dict | list)}
        texts = {str(w) for w in hashable}
        return lambda doc: any(v in hashable or str(v) in texts for v in get_values(doc[3], field))
    if kind == "ids":
        ids = {str(v) for v in body.get("values", [])}
        return lambda doc: doc[1] in ids
    if kind == "exists":
        field = body["field"]
        return lambda doc: bool(get_values(doc[3], field))
    if kind == "prefix":
        field, spec = _one(body, "prefix")
        want = str(_term_value(spec))
        return lambda doc: any(str(v).startswith(want) for v in get_values(doc[3], field))
    if kind == "range":
        field, spec = _one(body, "range")
        bounds = {k: v for k, v in spec.items() if k in ("gt", "gte", "lt", "lte")}
        return lambda doc: any(_in_range(v, bounds) for v in get_values(doc[3], field))
    if kind == "bool":
        return _compile_bool(body)
    raise SearchError("parsing_exception", f"unknown query [{kind}]")


def _clauses(value: Any) -> list[Callable[[Doc], bool]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [compile_query(q) for q in items]


def _compile_bool(body: dict[str, Any]) -> Callable[[Doc], bool]:
    must = _clauses(body.get("must")) + _clauses(body.get("filter"))
    must_not = _clauses(body.get("must_not"))
    should = _clauses(body.get("should"))
    minimum = body.get("minimum_should_match")
    if minimum is None:
        minimum = 0 if must else (1 if should else 0)
    minimum = int(minimum)

    def pred(doc: Doc) -> bool:
        if not all(p(doc) for p in must):
            return False
        if any(p(doc) for p in must_not):
            return False
        return not (minimum and sum(1 for p in should if p(doc)) < minimum)

    return pred


# -- sorting -----------------------------------------------------------------------------------
class _SortSpec:
    __slots__ = ("desc", "field", "missing_first")

    def __init__(self, field: str, desc: bool, missing_first: bool) -> None:
        self.field = field
        self.desc = desc
        self.missing_first = missing_first

    def value(self, doc: Doc) -> Any:
        if self.field == "_doc":
            return doc[2]
        if self.field == "_id":
            return doc[1]
        if self.field == "_score":
            return 1.0
        values = get_values(doc[3], self.field)
        if not values:
            return None
        try:
            return max(values) if self.desc else min(values)
        except TypeError:
            return values[0]


def parse_sort(sort: Any) -> list[_SortSpec]:
    if sort is None:
        return []
    items = sort if isinstance(sort, list) else [sort]
    specs = []
    for item in items:
        if isinstance(item, str):
            field, order, missing = item, ("desc" if item == "_score" else "asc"), "_last"
        elif isinstance(item, dict) and len(item) == 1:
            field, spec = next(iter(item.items()))
            if isinstance(spec, str):
                order, missing = spec, "_last"
            elif isinstance(spec, dict):
                order = spec.get("order", "desc" if field == "_score" else "asc")
                missing = spec.get("missing", "_last")
            else:
                raise SearchError("parsing_exception", f"malformed sort on [{field}]")
        else:
            raise SearchError("parsing_exception", "malformed sort")
        if order not in ("asc", "desc"):
            raise SearchError("illegal_argument_exception", f"unknown sort order [{order}]")
        specs.append(_SortSpec(field, order == "desc", missing == "_first"))
    return specs


def _rank(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def _compare(a: Any, b: Any, spec: _SortSpec) -> int:
    """-1 when ``a`` comes first in this sort, 1 when ``b`` does, 0 when tied."""
    if a is None or b is None:
        if a is None and b is None:
            return 0
        first_missing = spec.missing_first
        if a is None:
            return -1 if first_missing else 1
        return 1 if first_missing else -1
    ra, rb = _rank(a), _rank(b)
    if ra == rb:
        return 0
    result = -1 if ra < rb else 1
    return -result if spec.desc else result


def _ordered(rows: list[tuple[Doc, list[Any]]], specs: list[_SortSpec]) -> None:
    """Sort ``rows`` in place by ``specs`` (then insertion order): stable passes, last first."""
    rows.sort(key=lambda row: row[0][2])
    for position in range(len(specs) - 1, -1, -1):
        spec = specs[position]
        # Present values before missing ones unless missing_first; reverse flips both parts.
        present, absent = (1, 0) if spec.desc != spec.missing_first else (0, 1)

        def key(
            row: tuple[Doc, list[Any]], i: int = position, yes: int = present, no: int = absent
        ) -> tuple[int, tuple[int, Any]]:
            value = row[1][i]
            if value is None:
                return (no, (0, 0))
            return (yes, _rank(value))

        rows.sort(key=key, reverse=spec.desc)


def sort_docs(
    docs: Iterable[Doc], specs: list[_SortSpec], after: list[Any] | None = None
) -> list[tuple[Doc, list[Any]]]:
    """Documents with their sort values, in order, only those after ``after``."""
    rows = [(doc, [s.value(doc) for s in specs]) for doc in docs]
    if after is not None:
        if len(after) != len(specs):
            raise SearchError(
                "illegal_argument_exception",
                f"search_after has {len(after)} value(s) but sort has {len(specs)}",
            )

        def later(values: list[Any]) -> bool:
            for spec, a, b in zip(specs, values, after, strict=True):
                c = _compare(a, b, spec)
                if c:
                    return c > 0
            return False

        rows = [row for row in rows if later(row[1])]
    _ordered(rows, specs)
    return rows


# -- _source filtering ---------------------------------------------------------------------------
def filter_source(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    """``_source`` as asked: true/false, a pattern, a list of patterns or includes/excludes."""
    if spec is None or spec is True:
        return source
    if spec is False:
        return None
    includes: list[str] = []
    excludes: list[str] = []
    if isinstance(spec, str):
        includes = [spec]
    elif isinstance(spec, list):
        includes = [str(s) for s in spec]
    elif isinstance(spec, dict):
        inc: Any = spec.get("includes", spec.get("include")) or []
        exc: Any = spec.get("excludes", spec.get("exclude")) or []
        includes = [inc] if isinstance(inc, str) else [str(i) for i in inc]
        excludes = [exc] if isinstance(exc, str) else [str(e) for e in exc]
    else:
        return source
    return _pick(source, "", includes, excludes)


def _matches(path: str, patterns: list[str]) -> bool:
    return any(path == p or fnmatch.fnmatchcase(path, p) for p in patterns)


def _pick(obj: dict[str, Any], prefix: str, inc: list[str], exc: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if _matches(path, exc):
            continue
        if not inc or _matches(path, inc):
            if isinstance(value, dict) and exc:
                out[key] = _pick(value, path + ".", [], exc)
            else:
                out[key] = value
        elif isinstance(value, dict) and any(p.startswith(path + ".") or "*" in p for p in inc):
            sub = _pick(value, path + ".", inc, exc)
            if sub:
                out[key] = sub
    return out


# -- filter_path ---------------------------------------------------------------------------------
def filter_path(body: Any, spec: str | None) -> Any:
    """The response filtered by ``filter_path`` (comma-separated dotted patterns, ``*``)."""
    if not spec:
        return body
    result = _filter(body, _compile_paths(spec))
    return {} if result is None else result


#: A compiled filter: segment -> True (keep all below) or a deeper filter.
_Tree = dict[str, Any]
_compiled: dict[str, _Tree] = {}


def _compile_paths(spec: str) -> _Tree:
    tree = _compiled.get(spec)
    if tree is None:
        tree = {}
        for pattern in spec.split(","):
            if pattern:
                _add_path(tree, pattern.split("."))
        if len(_compiled) < 256:
            _compiled[spec] = tree
    return tree


def _add_path(tree: _Tree, segments: list[str]) -> None:
    head, rest = segments[0], segments[1:]
    if not rest:
        tree[head] = True
        return
    node = tree.get(head)
    if node is True:
        return
    if node is None:
        node = tree[head] = {}
    _add_path(node, rest)


def _merge(trees: list[Any]) -> Any:
    if any(t is True for t in trees):
        return True
    merged: _Tree = {}
    for tree in trees:
        for key, sub in tree.items():
            merged[key] = sub if key not in merged else _merge([merged[key], sub])
    return merged


def _filter(value: Any, tree: _Tree) -> Any:
    if isinstance(value, list):
        kept = []
        for item in value:
            filtered = _filter(item, tree)
            if filtered is not None:
                kept.append(filtered)
        return kept or None
    if not isinstance(value, dict):
        return None
    wild = [(seg, sub) for seg, sub in tree.items() if "*" in seg or "?" in seg]
    out: dict[str, Any] = {}
    if not wild:
        for key, sub in tree.items():
            if key in value:
                found = value[key] if sub is True else _filter(value[key], sub)
                if found is not None:
                    out[key] = found
        return out or None
    for key, item in value.items():
        subs = [sub for seg, sub in wild if seg == "*" or fnmatch.fnmatchcase(key, seg)]
        if key in tree:
            subs.append(tree[key])
        if not subs:
            continue
        sub = subs[0] if len(subs) == 1 else _merge(subs)
        found = item if sub is True else _filter(item, sub)
        if found is not None:
            out[key] = found
    return out or None


# -- hits and aggregations -------------------------------------------------------------------
def _hit(doc: Doc, source_spec: Any, sort: list[Any] | None) -> dict[str, Any]:
    hit: dict[str, Any] = {"_index": doc[0], "_id": doc[1], "_score": None if sort else 1.0}
    source = filter_source(doc[3], source_spec)
    if source is not None:
        hit["_source"] = source
    if sort is not None:
        hit["sort"] = sort
    return hit


def search_docs(docs: list[Doc], body: dict[str, Any]) -> dict[str, Any]:
    """The ``hits`` and ``aggregations`` of a search body over ``docs``."""
    pred = compile_query(body.get("query"))
    matched = [doc for doc in docs if pred(doc)]
    specs = parse_sort(body.get("sort"))
    rows = sort_docs(matched, specs, body.get("search_after"))
    start = int(body.get("from", 0))
    size = int(body.get("size", 10))
    page = rows[start : start + size]
    source_spec = body.get("_source")
    hits: dict[str, Any] = {
        "max_score": None if specs else (1.0 if page else None),
        "hits": [_hit(doc, source_spec, values if specs else None) for doc, values in page],
    }
    track = body.get("track_total_hits", 10_000)
    if track is not False:
        limit = len(matched) if track is True else int(track)
        total = min(len(matched), limit)
        hits = {
            "total": {"value": total, "relation": "eq" if total == len(matched) else "gte"},
            **hits,
        }
    result: dict[str, Any] = {"hits": hits}
    aggs = body.get("aggs", body.get("aggregations"))
    if aggs:
        result["aggregations"] = run_aggs(matched, aggs)
    return result


def run_aggs(docs: list[Doc], aggs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        sub = spec.get("aggs", spec.get("aggregations")) or {}
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise SearchError("parsing_exception", f"aggregation [{name}] needs one type")
        kind = kinds[0]
        agg = _AGGS.get(kind)
        if agg is None:
            raise SearchError("unknown_named_object_exception", f"unknown aggregation [{kind}]")
        out[name] = agg(docs, spec[kind], sub)
    return out


def _metric_values(docs: list[Doc], body: dict[str, Any]) -> list[Any]:
    field = body["field"]
    values: list[Any] = []
    for doc in docs:
        values.extend(_num(v) for v in get_values(doc[3], field))
    return values


def _min(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    values = [v for v in _metric_values(docs, body) if isinstance(v, int | float)]
    return {"value": float(min(values)) if values else None}


def _max(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    values = [v for v in _metric_values(docs, body) if isinstance(v, int | float)]
    return {"value": float(max(values)) if values else None}


def _sum(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    values = [v for v in _metric_values(docs, body) if isinstance(v, int | float)]
    return {"value": float(sum(values))}


def _avg(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    values = [v for v in _metric_values(docs, body) if isinstance(v, int | float)]
    return {"value": float(sum(values)) / len(values) if values else None}


def _value_count(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    return {"value": len(_metric_values(docs, body))}


def _cardinality(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    return {"value": len({str(v) for v in _metric_values(docs, body)})}


def _top_hits(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    specs = parse_sort(body.get("sort"))
    rows = sort_docs(docs, specs)
    start = int(body.get("from", 0))
    size = int(body.get("size", 3))
    source_spec = body.get("_source")
    return {
        "hits": {
            "total": {"value": len(docs), "relation": "eq"},
            "max_score": None if specs else 1.0,
            "hits": [
                _hit(doc, source_spec, values if specs else None)
                for doc, values in rows[start : start + size]
            ],
        }
    }


def _filter_agg(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    pred = compile_query(body)
    kept = [doc for doc in docs if pred(doc)]
    return {"doc_count": len(kept), **run_aggs(kept, sub)}


def _key(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _groups(docs: list[Doc], field: str, missing: bool) -> dict[Any, list[Doc]]:
    groups: dict[Any, list[Doc]] = {}
    for doc in docs:
        values = get_values(doc[3], field)
        if not values:
            if missing:
                groups.setdefault(None, []).append(doc)
            continue
        for value in {_key(v) for v in values if not isinstance(v, dict)}:
            groups.setdefault(value, []).append(doc)
    return groups


def _terms(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    groups = _groups(docs, body["field"], False)
    order = body.get("order", {"_count": "desc"})
    if isinstance(order, list):
        order = order[0]
    ((by, direction),) = order.items()
    keys = sorted(groups, key=_rank)
    if direction == "desc" and by == "_key":
        keys.reverse()
    if by == "_count":
        keys.sort(key=lambda k: len(groups[k]), reverse=direction == "desc")
    size = int(body.get("size", 10))
    shown = keys[:size]
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(len(groups[k]) for k in keys[size:]),
        "buckets": [
            {"key": k, "doc_count": len(groups[k]), **run_aggs(groups[k], sub)} for k in shown
        ],
    }


def _composite(docs: list[Doc], body: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    sources = body.get("sources") or []
    names: list[str] = []
    fields: list[tuple[str, bool, bool]] = []
    for source in sources:
        ((name, spec),) = source.items()
        if "terms" not in spec:
            raise SearchError("parsing_exception", "only terms sources are supported here")
        terms = spec["terms"]
        names.append(name)
        fields.append(
            (terms["field"], terms.get("order", "asc") == "desc", bool(terms.get("missing_bucket")))
        )
    buckets: dict[tuple[Any, ...], list[Doc]] = {(): list(docs)}
    for field, _desc, missing in fields:
        nxt: dict[tuple[Any, ...], list[Doc]] = {}
        for key, members in buckets.items():
            for value, group in _groups(members, field, missing).items():
                nxt[(*key, value)] = group
        buckets = nxt
    specs = [_SortSpec(n, desc, True) for n, (_f, desc, _m) in zip(names, fields, strict=True)]

    def cmp_key(key: tuple[Any, ...]) -> Any:
        import functools

        def cmp(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
            for spec, x, y in zip(specs, a, b, strict=True):
                c = _compare(x, y, spec)
                if c:
                    return c
            return 0

        return functools.cmp_to_key(cmp)(key)

    keys = sorted(buckets, key=cmp_key)
    after = body.get("after")
    if after is not None:
        after_key = tuple(after.get(n) for n in names)
        after_cmp = cmp_key(after_key)
        keys = [k for k in keys if cmp_key(k) > after_cmp]
    size = int(body.get("size", 10))
    page = keys[:size]
    out: dict[str, Any] = {
        "buckets": [
            {
                "key": dict(zip(names, key, strict=True)),
                "doc_count": len(buckets[key]),
                **run_aggs(buckets[key], sub),
            }
            for key in page
        ]
    }
    if page:
        out = {"after_key": dict(zip(names, page[-1], strict=True)), **out}
    return out


_AGGS: dict[str, Callable[[list[Doc], Any, dict[str, Any]], dict[str, Any]]] = {
    "min": _min,
    "max": _max,
    "sum": _sum,
    "avg": _avg,
    "value_count": _value_count,
    "cardinality": _cardinality,
    "top_hits": _top_hits,
    "filter": _filter_agg,
    "terms": _terms,
    "composite": _composite,
}
