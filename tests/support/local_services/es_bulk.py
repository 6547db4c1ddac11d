"""The ``_bulk`` endpoint of :class:`~local_services.elasticsearch.LocalElasticsearch`,
as a mixin: NDJSON parsing with Elasticsearch's errors for malformed lines, the
``index``/``create``/``update``/``delete`` operations with per-item statuses and the ``errors``
flag, versions and sequence numbers, ``refresh``, injected item faults and lost responses, and
``filter_path`` applied item by item. The common case (a new or replaced document that plainly
fits its index's mapping) runs inline; anything else takes the full path through the mapping
check.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import orjson

from local_services.es_faults import FAULT_TYPES, FaultsMixin
from local_services.es_http import Drop, HTTPError
from local_services.es_indices import Index, IndicesMixin, check_index_name
from local_services.es_mapping import check_doc, compile_checker, fits_fast
from local_services.es_search import _compile_paths

__all__ = ["BulkMixin"]

_BAD_JSON = object()
# Bulk items as filter_path "items.*.status" leaves a success (shared, never changed).
_CREATED = {op: {op: {"status": 201}} for op in ("index", "create")}
_UPDATED = {op: {op: {"status": 200}} for op in ("index", "create")}
_UNPARSED: Any = object()  # check_documents=False: the source is kept as received
_BULK_OPS = frozenset({"index", "create", "update", "delete"})
_SHARDS = {"total": 2, "successful": 1, "failed": 0}


def _item_keys(spec: str | None) -> tuple[str, ...] | None:
    """For a ``filter_path`` like ``errors,items.*.status,items.*.error``: the keys kept in each
    bulk item. None when the filter has another shape (then it is applied the general way)."""
    if not spec:
        return None
    tree = _compile_paths(spec)
    if not set(tree) <= {"errors", "took", "items"} or any(
        tree[k] is not True for k in tree if k != "items"
    ):
        return None
    items = tree.get("items")
    if items is None:
        return ()
    if not isinstance(items, dict) or set(items) != {"*"} or not isinstance(items["*"], dict):
        return None
    leaves = items["*"]
    if any(v is not True for v in leaves.values()):
        return None
    return tuple(leaves)


class BulkMixin(IndicesMixin, FaultsMixin):
    """The bulk endpoint (state set by ``LocalElasticsearch.__init__``)."""

    check_documents: bool
    rejected: list[tuple[int, str]]
    bulk_requests: int
    bulk_operations: int
    _seq: int

    # -- bulk ----------------------------------------------------------------------------------
    def _bulk(
        self, default_index: str | None, body: bytes, query: dict[str, str]
    ) -> tuple[int, Any]:
        started = time.perf_counter()
        lines = body.split(b"\n")
        ops: list[tuple[str, str, str | None, Any, bytes]] = []
        loads = orjson.loads
        check = self.check_documents
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            i += 1
            if not line or line.isspace():
                continue
            try:
                ((op, meta),) = loads(line).items()
            except orjson.JSONDecodeError:
                raise HTTPError(
                    400, "x_content_parse_exception", f"[1:1] Malformed action/metadata line [{i}]"
                ) from None
            except (AttributeError, ValueError):
                raise HTTPError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i}], expected START_OBJECT or END_OBJECT",
                ) from None
            if op not in _BULK_OPS or type(meta) is not dict:
                raise HTTPError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i}], expected field [create], [delete], "
                    f"[index] or [update] but found [{op}]",
                )
            index = meta.get("_index") or default_index
            if not index:
                raise HTTPError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                )
            source: Any = None
            raw = b""
            if op != "delete":
                raw = lines[i] if i < n else b""
                if not raw or raw.isspace():
                    raise HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"The bulk request must be terminated by a newline [\\n] (line {i})",
                    )
                i += 1
                if check or op == "update":
                    try:
                        source = loads(raw)
                    except orjson.JSONDecodeError:
                        source = _BAD_JSON
                else:
                    source = _UNPARSED
            doc_id = meta.get("_id")
            ops.append((op, index, doc_id if doc_id is None else str(doc_id), source, raw))
        items = []
        errors = False
        keys = _item_keys(query.get("filter_path"))
        only_status = keys is not None and "status" in keys and set(keys) <= {"status", "error"}
        with self._lock:
            self.bulk_requests += 1
            self.bulk_operations += len(ops)
            touched: set[str] = set()
            indices = self._indices
            for op, index, doc_id, source, raw in ops:
                item: dict[str, Any] | None = None
                if (
                    op in ("index", "create")
                    and doc_id is not None
                    and (type(source) is dict or source is _UNPARSED)
                    and not self._item_faults
                ):
                    # The common case, inline: a new or replaced document in an existing index
                    # that plainly fits its mapping. Anything else takes _apply's full path.
                    idx = indices.get(index)
                    if idx is not None and (op == "create" or not idx.data_stream):
                        existing = idx.docs.get(doc_id)
                        checker = idx.checker
                        if checker is None:
                            checker = idx.checker = compile_checker(idx.mappings)
                        if source is _UNPARSED:
                            fits = raw[:1] == b"{" and (
                                not idx.data_stream or b'"@timestamp"' in raw
                            )
                        else:
                            parsed: dict[str, Any] = source
                            fits = (not idx.data_stream or "@timestamp" in parsed) and fits_fast(
                                parsed, checker
                            )
                        if (existing is None or op == "index") and fits:
                            self._seq += 1
                            version = 1 if existing is None else existing[0] + 1
                            idx.docs[doc_id] = (version, self._seq, raw)
                            idx.dirty.add(doc_id)
                            touched.add(index)
                            if only_status:
                                # What filter_path keeps of a success: its status alone.
                                items.append(_CREATED[op] if existing is None else _UPDATED[op])
                                continue
                            item = {
                                "_index": idx.backing,
                                "_id": doc_id,
                                "_version": version,
                                "result": "created" if existing is None else "updated",
                                "_shards": _SHARDS,
                                "_seq_no": self._seq,
                                "_primary_term": 1,
                                "status": 201 if existing is None else 200,
                            }
                if item is None:
                    item = self._apply(op, index, doc_id, source, raw)
                status = item["status"]
                if status >= 300:
                    errors = True
                    self.rejected.append((status, item.get("_id", "")))
                else:
                    touched.add(index)
                if keys is None:
                    items.append({op: item})
                else:  # filter_path applied here, item by item (the common, fast case)
                    kept = {k: item[k] for k in keys if k in item}
                    if kept:
                        items.append({op: kept})
            if query.get("refresh") in ("", "true", "wait_for"):
                for name in touched:
                    idx = self._indices.get(name)
                    if idx is not None:
                        idx.refresh()
            lose = self._lose > 0
            if lose:
                self._lose -= 1
        if lose:
            raise Drop
        took = int((time.perf_counter() - started) * 1000)
        result = {"errors": errors, "took": took, "items": items}
        if keys is not None:
            wanted = _compile_paths(query.pop("filter_path"))
            result = {k: v for k, v in result.items() if k in wanted and (k != "items" or v)}
        return 200, result

    def _apply(
        self, op: str, index: str, doc_id: str | None, source: Any, raw: bytes
    ) -> dict[str, Any]:
        fault = self._item_fault() if self._item_faults else None
        if fault is not None:
            status, reason = fault
            return {
                "_index": index,
                "_id": doc_id or "",
                "status": status,
                "error": {"type": FAULT_TYPES.get(status, "exception"), "reason": reason},
            }
        try:
            idx = self._indices.get(index)
            if idx is None:
                check_index_name(index)
                if op in ("update", "delete"):
                    raise HTTPError(404, "index_not_found_exception", f"no such index [{index}]")
                template = self._matching_template(index)
                if template is not None and template.data_stream and op != "create":
                    raise HTTPError(
                        400,
                        "illegal_argument_exception",
                        "only write ops with an op_type of create are allowed in data streams",
                    )
                idx = self._new_index(index, None)
            if idx.data_stream and op != "create":
                raise HTTPError(
                    400,
                    "illegal_argument_exception",
                    "only write ops with an op_type of create are allowed in data streams",
                )
            return self._write(idx, op, doc_id, source, raw)
        except HTTPError as err:
            return {
                "_index": index,
                "_id": doc_id or "",
                "status": err.status,
                "error": {"type": err.kind, "reason": err.reason, "index": index},
            }

    def _write(
        self, idx: Index, op: str, doc_id: str | None, source: Any, raw: bytes
    ) -> dict[str, Any]:
        if doc_id is None:
            if op in ("update", "delete"):
                raise HTTPError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: id is missing;",
                )
            doc_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
        existing = idx.docs.get(doc_id)
        if op == "delete":
            if existing is None:
                return self._item(idx, doc_id, 1, "not_found", 404)
            del idx.docs[doc_id]
            idx.dirty.add(doc_id)
            return self._item(idx, doc_id, existing[0] + 1, "deleted", 200)
        if source is _UNPARSED:
            try:
                source = orjson.loads(raw)
            except orjson.JSONDecodeError:
                source = _BAD_JSON
        if source is _BAD_JSON or not isinstance(source, dict):
            raise HTTPError(
                400, "document_parsing_exception", "[1:1] failed to parse: not a JSON object"
            )
        if op == "update":
            if existing is None:
                raise HTTPError(404, "document_missing_exception", f"[{doc_id}]: document missing")
            partial = source.get("doc")
            if not isinstance(partial, dict):
                raise HTTPError(400, "action_request_validation_exception", "doc is missing")
            source = {**orjson.loads(existing[2]), **partial}
            raw = orjson.dumps(source)
        if op == "create" and existing is not None:
            raise HTTPError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists "
                f"(current version [{existing[0]}])",
            )
        if idx.data_stream and "@timestamp" not in source:
            raise HTTPError(
                400,
                "document_parsing_exception",
                "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
            )
        mappings = idx.mappings
        checker = idx.checker
        if checker is None:
            checker = idx.checker = compile_checker(mappings)
        if not fits_fast(source, checker):
            # Unknown fields, odd values or a misfit: the full check (dynamic mapping, errors).
            check_doc(
                source,
                mappings.setdefault("properties", {}),
                mappings.get("dynamic", True),
                mappings.get("dynamic_templates", []),
                "",
                doc_id,
            )
            idx.checker = None  # the mapping may have grown
        self._seq += 1
        version = 1 if existing is None else existing[0] + 1
        idx.docs[doc_id] = (version, self._seq, raw)
        idx.dirty.add(doc_id)
        if existing is None:
            return self._item(idx, doc_id, version, "created", 201)
        return self._item(idx, doc_id, version, "updated", 200)

    def _item(
        self, idx: Index, doc_id: str, version: int, result: str, status: int
    ) -> dict[str, Any]:
        return {
            "_index": idx.backing,
            "_id": doc_id,
            "_version": version,
            "result": result,
            "_shards": _SHARDS,
            "_seq_no": self._seq,
            "_primary_term": 1,
            "status": status,
        }
