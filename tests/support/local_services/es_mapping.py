"""Documents against mappings, for
:class:`~local_services.elasticsearch.LocalElasticsearch`: mapped fields are type-checked
as Elasticsearch does (long, integer, double, boolean, date, keyword, object...), unknown fields
are added by dynamic mapping (``dynamic_templates``, or inferred from the value) unless
``dynamic`` is ``false`` or ``strict``, and a document that does not fit raises
:class:`~._es_http.HTTPError` (400 ``document_parsing_exception``). A mapping is also compiled
into a :class:`Checker` for :func:`fits_fast`, the cheap test the bulk path runs first on every
document.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any

from local_services.es_http import HTTPError

__all__ = ["Checker", "check_doc", "compile_checker", "fits_fast"]

_INT_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
_FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
_TEXT_TYPES = {"keyword", "text", "match_only_text", "wildcard", "constant_keyword"}
#: Value types that fit a field type with no further check.
FAST_TYPES: dict[str, tuple[type, ...]] = {
    **{kind: (int,) for kind in _INT_TYPES},
    **{kind: (float, int) for kind in _FLOAT_TYPES},
    **{kind: (str,) for kind in _TEXT_TYPES},
    "date": (str, int),
    "date_nanos": (str, int),
    "boolean": (bool,),
}


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _fits(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return all(_fits(kind, v) for v in value)
    if kind in _INT_TYPES or kind in _FLOAT_TYPES:
        return _is_int(value)
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false", "")
    if kind in ("date", "date_nanos"):
        return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
    if kind in _TEXT_TYPES:
        return not isinstance(value, dict)
    return True


def _infer(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if isinstance(value, dict):
        return {"properties": {}}
    return None


def _dynamic_template(templates: list[Any], path: str) -> dict[str, Any] | None:
    for item in templates:
        if not isinstance(item, dict):
            continue
        for spec in item.values():
            if fnmatch.fnmatchcase(path, spec.get("path_match", "\0")):
                mapping: dict[str, Any] = spec.get("mapping", {})
                return mapping
    return None


class Checker:
    """A mapped object compiled for :func:`fits_fast`: each field's rule, and whether fields
    not in the mapping are allowed without a look (``dynamic: false``)."""

    __slots__ = ("fields", "lenient")

    def __init__(self, fields: dict[str, Any], lenient: bool) -> None:
        self.fields = fields
        self.lenient = lenient


_SKIP = object()


def compile_checker(mappings: dict[str, Any], dynamic: Any = True) -> Checker:
    """Field rules: a tuple of value types that fit, an Checker, or _SKIP (not indexed)."""
    dynamic = mappings.get("dynamic", dynamic)
    fields: dict[str, Any] = {}
    for key, spec in (mappings.get("properties") or {}).items():
        if spec.get("enabled") is False:
            fields[key] = _SKIP
            continue
        kind = spec.get("type")
        if kind is None or kind == "object":
            fields[key] = compile_checker(spec, dynamic)
        elif kind in FAST_TYPES:
            fields[key] = FAST_TYPES[kind]
        # any other type: left out, so its values take the full check
    return Checker(fields, dynamic in (False, "false"))


def fits_fast(doc: dict[str, Any], checker: Checker) -> bool:
    """True when every value of ``doc`` plainly fits the compiled mapping. False means "look
    closer" (not necessarily a misfit). Objects one level down are checked inline (a function
    call per object would cost more than the check)."""
    fields = checker.fields
    for key, value in doc.items():
        rule = fields.get(key)
        if rule is None:
            if checker.lenient or value is None:
                continue
            return False
        if rule.__class__ is tuple:
            if type(value) not in rule:
                return False
        elif rule.__class__ is Checker:
            if type(value) is not dict:
                return False
            inner = rule.fields
            for key2, value2 in value.items():
                rule2 = inner.get(key2)
                if rule2 is None:
                    if rule.lenient or value2 is None:
                        continue
                    return False
                if rule2.__class__ is tuple:
                    if type(value2) not in rule2:
                        return False
                elif rule2.__class__ is Checker and (
                    type(value2) is not dict or not fits_fast(value2, rule2)
                ):
                    return False
    return True


def check_doc(
    doc: dict[str, Any],
    props: dict[str, Any],
    dynamic: Any,
    templates: list[Any],
    prefix: str,
    doc_id: str,
) -> None:
    """Raise HTTPError(400) if ``doc`` does not fit the mapping; add dynamic fields."""
    fast = FAST_TYPES
    for key, value in doc.items():
        spec = props.get(key)
        if spec is not None:
            kind = spec.get("type")
            if kind is not None:
                if type(value) in fast.get(kind, ()):
                    continue  # the common case: a value of the mapped type
            elif type(value) is dict and "properties" in spec and "dynamic" not in spec:
                check_doc(value, spec["properties"], dynamic, templates, f"{prefix}{key}.", doc_id)
                continue
        if "." in key and key not in props:
            head, _, rest = key.partition(".")
            check_doc({head: {rest: value}}, props, dynamic, templates, prefix, doc_id)
            continue
        path = f"{prefix}{key}"
        spec = props.get(key)
        if spec is None:
            if dynamic in (False, "false") or value is None:
                continue
            if dynamic == "strict":
                raise HTTPError(
                    400,
                    "strict_dynamic_mapping_exception",
                    f"[1:2] mapping set to strict, dynamic introduction of [{key}] within "
                    f"[{prefix.rstrip('.') or '_doc'}] is not allowed",
                )
            spec = _dynamic_template(templates, path) or _infer(value)
            if spec is None:
                continue
            props[key] = spec
        if spec.get("enabled") is False:
            continue
        kind = spec.get("type", "object" if "properties" in spec else None)
        if kind in ("object", "nested") or (kind is None and "properties" in spec):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise HTTPError(
                        400,
                        "document_parsing_exception",
                        f"[1:2] object mapping for [{path}] tried to parse field [{key}] as "
                        "object, but found a concrete value",
                    )
                sub = spec.setdefault("properties", {})
                check_doc(item, sub, spec.get("dynamic", dynamic), templates, path + ".", doc_id)
        elif kind is not None and not _fits(kind, value):
            preview = str(value)[:20]
            raise HTTPError(
                400,
                "document_parsing_exception",
                f"[1:2] failed to parse field [{path}] of type [{kind}] in document with id "
                f"'{doc_id}'. Preview of field's value: '{preview}'",
            )
