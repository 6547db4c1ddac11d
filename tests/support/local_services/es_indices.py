"""Indices, index templates and data streams of
:class:`~local_services.elasticsearch.LocalElasticsearch`: the :class:`Index` (documents
as received, what a refresh made visible, its mapping) and :class:`Template` records, index name
rules, and a mixin with the endpoints over them: resolving index expressions (comma lists,
wildcards, ``_all``, backing indices), create/get/delete an index, get a document, refresh,
``_index_template`` and ``_data_stream``. A data stream is an :class:`Index` made from a
data-stream template, named by its ``.ds-...`` backing index.
"""

from __future__ import annotations

import fnmatch
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from local_services.es_http import HTTPError, no_handler
from local_services.es_mapping import Checker

__all__ = ["BAD_INDEX_CHARS", "Index", "IndicesMixin", "Template", "check_index_name"]

BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


@dataclass
class Template:
    name: str
    patterns: list[str]
    priority: int
    data_stream: bool
    mappings: dict[str, Any]
    body: dict[str, Any]

    def matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


@dataclass
class Index:
    name: str
    mappings: dict[str, Any]
    data_stream: bool = False
    template: str | None = None
    backing: str = ""
    # Sources are kept as the JSON bytes received (as Elasticsearch keeps _source): bytes and
    # tuples of them are not tracked by the garbage collector, so a big index costs no GC time.
    docs: dict[str, tuple[int, int, bytes]] = field(default_factory=dict)  # id: version, seq, src
    visible: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    last_refresh: float = field(default_factory=time.monotonic)
    uuid: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    checker: Checker | None = None  # the mapping compiled for the fast check

    def __post_init__(self) -> None:
        if not self.backing:
            if self.data_stream:
                day = time.strftime("%Y.%m.%d", time.gmtime())
                self.backing = f".ds-{self.name}-{day}-000001"
            else:
                self.backing = self.name

    def refresh(self) -> None:
        for doc_id in self.dirty:
            entry = self.docs.get(doc_id)
            if entry is None:
                self.visible.pop(doc_id, None)
            else:
                self.visible[doc_id] = (entry[1], entry[2])
        self.dirty.clear()
        self.last_refresh = time.monotonic()


def check_index_name(name: str) -> None:
    bad = (
        name != name.lower()
        or bool(BAD_INDEX_CHARS & set(name))
        or name[:1] in ("-", "_", "+")
        or name in (".", "..")
        or len(name.encode()) > 255
    )
    if bad:
        raise HTTPError(
            400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase"
        )


class IndicesMixin:
    """Index, template and data-stream endpoints (state set by ``LocalElasticsearch.__init__``)."""

    _lock: threading.RLock
    _indices: dict[str, Index]
    _templates: dict[str, Template]

    # -- indices -------------------------------------------------------------------------------
    def _resolve(self, expr: str, query: dict[str, str], strict: bool = True) -> list[Index]:
        """The indices an index expression names (comma list, wildcards, _all)."""
        lenient = query.get("ignore_unavailable") == "true"
        found: list[Index] = []
        with self._lock:
            for part in expr.split(","):
                if part in ("_all", "*"):
                    found.extend(self._indices.values())
                elif "*" in part or "?" in part:
                    found.extend(
                        i for n, i in self._indices.items() if fnmatch.fnmatchcase(n, part)
                    )
                elif part in self._indices:
                    found.append(self._indices[part])
                else:
                    backing = [i for i in self._indices.values() if i.backing == part]
                    if backing:
                        found.extend(backing)
                    elif strict and not lenient:
                        raise HTTPError(404, "index_not_found_exception", f"no such index [{part}]")
                    elif not strict:
                        return []
        unique = {id(i): i for i in found}
        return list(unique.values())

    def _one_index(self, name: str) -> Index:
        indices = self._resolve(name, {})
        return indices[0]

    def _matching_template(self, name: str) -> Template | None:
        best: Template | None = None
        for template in self._templates.values():
            if template.matches(name) and (best is None or template.priority > best.priority):
                best = template
        return best

    def _new_index(self, name: str, mappings: dict[str, Any] | None) -> Index:
        template = self._matching_template(name)
        if mappings is None:
            mappings = orjson.loads(orjson.dumps(template.mappings)) if template else {}
        idx = Index(
            name,
            mappings,
            data_stream=bool(template and template.data_stream),
            template=template.name if template else None,
        )
        self._indices[name] = idx
        return idx

    def _create_index(self, name: str, body: bytes) -> tuple[int, Any]:
        check_index_name(name)
        spec = orjson.loads(body) if body.strip() else {}
        with self._lock:
            if name in self._indices:
                raise HTTPError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{name}/{self._indices[name].uuid}] already exists",
                )
            template = self._matching_template(name)
            if template is not None and template.data_stream:
                raise HTTPError(
                    400,
                    "illegal_argument_exception",
                    f"cannot create index with name [{name}], because it matches with template "
                    f"[{template.name}] that creates data streams only, use create data stream "
                    "api instead",
                )
            self._new_index(name, spec.get("mappings"))
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _get_index(self, expr: str, query: dict[str, str]) -> dict[str, Any]:
        return {
            idx.backing: {
                "aliases": {},
                "mappings": idx.mappings,
                "settings": {"index": {"uuid": idx.uuid, "provided_name": idx.name}},
                **({"data_stream": idx.name} if idx.data_stream else {}),
            }
            for idx in self._resolve(expr, query)
        }

    def _delete_index(self, expr: str) -> tuple[int, Any]:
        with self._lock:
            for idx in self._resolve(expr, {}):
                if idx.data_stream:
                    raise HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"index [{idx.name}] is a data stream: delete it with the data stream api",
                    )
                del self._indices[idx.name]
        return 200, {"acknowledged": True}

    def _get_doc(self, index: str, doc_id: str) -> tuple[int, Any]:
        with self._lock:
            idx = self._one_index(index)
            entry = idx.docs.get(doc_id)
            if entry is None:
                return 404, {"_index": idx.backing, "_id": doc_id, "found": False}
            version, seq, source = entry
            return 200, {
                "_index": idx.backing,
                "_id": doc_id,
                "_version": version,
                "_seq_no": seq,
                "_primary_term": 1,
                "found": True,
                "_source": orjson.loads(source),
            }

    def _refresh(self, expr: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            indices = self._resolve(expr, query)
            for idx in indices:
                idx.refresh()
        shards = len(indices)
        return 200, {"_shards": {"total": shards, "successful": shards, "failed": 0}}

    # -- templates and data streams ------------------------------------------------------------
    def _template(
        self, method: str, name: str | None, body: bytes, query: dict[str, str]
    ) -> tuple[int, Any]:
        with self._lock:
            if method in ("GET", "HEAD"):
                found = [
                    t
                    for n, t in self._templates.items()
                    if name is None or fnmatch.fnmatchcase(n, name)
                ]
                if name is not None and not found:
                    if method == "HEAD":
                        return 404, None
                    raise HTTPError(
                        404,
                        "resource_not_found_exception",
                        f"index template matching [{name}] not found",
                    )
                return 200, {
                    "index_templates": [{"name": t.name, "index_template": t.body} for t in found]
                }
            if name is None:
                raise no_handler(method, "/_index_template")
            if method == "DELETE":
                if self._templates.pop(name, None) is None:
                    raise HTTPError(
                        404, "resource_not_found_exception", f"index_template [{name}] missing"
                    )
                return 200, {"acknowledged": True}
            if method not in ("PUT", "POST"):
                raise no_handler(method, f"/_index_template/{name}")
            spec = orjson.loads(body) if body.strip() else {}
            if query.get("create") == "true" and name in self._templates:
                raise HTTPError(
                    400, "illegal_argument_exception", f"index template [{name}] already exists"
                )
            patterns = spec.get("index_patterns")
            if isinstance(patterns, str):
                patterns = [patterns]
            if not patterns:
                raise HTTPError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index patterns are missing;",
                )
            priority = int(spec.get("priority", 0))
            for other in self._templates.values():
                overlap = any(
                    fnmatch.fnmatchcase(p, q) or fnmatch.fnmatchcase(q, p)
                    for p in patterns
                    for q in other.patterns
                )
                if other.name != name and overlap and other.priority == priority:
                    raise HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"index template [{name}] has index patterns {patterns} matching "
                        f"patterns from existing templates [{other.name}] with patterns "
                        f"({other.name} => {other.patterns}) that have the same priority "
                        f"[{priority}], multiple index templates may not match during index "
                        "creation, please use a different priority",
                    )
            self._templates[name] = Template(
                name=name,
                patterns=list(patterns),
                priority=priority,
                data_stream="data_stream" in spec,
                mappings=(spec.get("template") or {}).get("mappings") or {},
                body=spec,
            )
        return 200, {"acknowledged": True}

    def _data_stream(self, method: str, name: str | None) -> tuple[int, Any]:
        with self._lock:
            if method == "GET":
                streams = [
                    i
                    for n, i in self._indices.items()
                    if i.data_stream and (name is None or fnmatch.fnmatchcase(n, name))
                ]
                if name is not None and "*" not in name and not streams:
                    raise HTTPError(404, "index_not_found_exception", f"no such index [{name}]")
                return 200, {"data_streams": [self._stream_info(i) for i in streams]}
            if name is None:
                raise no_handler(method, "/_data_stream")
            if method == "PUT":
                check_index_name(name)
                if name in self._indices:
                    raise HTTPError(
                        400,
                        "resource_already_exists_exception",
                        f"data_stream [{name}] already exists",
                    )
                template = self._matching_template(name)
                if template is None or not template.data_stream:
                    raise HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"no matching index template found for data stream [{name}]",
                    )
                self._new_index(name, None)
                return 200, {"acknowledged": True}
            if method == "DELETE":
                idx = self._indices.get(name)
                if idx is None or not idx.data_stream:
                    raise HTTPError(404, "index_not_found_exception", f"no such index [{name}]")
                del self._indices[name]
                return 200, {"acknowledged": True}
        raise no_handler(method, f"/_data_stream/{name}")

    @staticmethod
    def _stream_info(idx: Index) -> dict[str, Any]:
        return {
            "name": idx.name,
            "timestamp_field": {"name": "@timestamp"},
            "indices": [{"index_name": idx.backing, "index_uuid": idx.uuid}],
            "generation": 1,
            "status": "GREEN",
            "template": idx.template,
            "hidden": False,
            "system": False,
            "allow_custom_routing": False,
            "replicated": False,
        }
