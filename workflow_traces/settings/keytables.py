"""The key tables of the sink types, in Markdown, made from their config models (the sink
registry's), for the README's "Sinks and their keys".

The README holds each table between ``<!-- keys:NAME -->`` and ``<!-- /keys -->``: NAME is
``common`` (the keys every sink takes) or a sink type. ``python -m
workflow_traces.settings.keytables README.md`` rewrites them; a test checks they are current.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from pydantic.fields import FieldInfo

from workflow_traces.exporters import registry
from workflow_traces.exporters.config import SinkConfig

__all__ = ["blocks", "common_table", "key_table", "main", "tables", "update_readme"]

_BLOCK = re.compile(r"(<!-- keys:([\w-]+) -->\n)(.*?)(<!-- /keys -->)", re.DOTALL)


def _default(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("default_text"), str):
        return str(extra["default_text"])
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, dict | list) and not value:
        return f"`{value}`"
    return f"`{value}`"


def _rows(fields: dict[str, FieldInfo]) -> str:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for name, info in fields.items():
        if name == "type":
            continue
        lines.append(f"| `{name}` | {_default(info)} | {info.description or ''} |")
    return "\n".join(lines) + "\n"


def common_table() -> str:
    """The keys every sink type takes."""
    return _rows(dict(SinkConfig.model_fields))


def key_table(model: type[SinkConfig]) -> str:
    """The keys of one sink type's model that differ from the common ones: its own keys, and
    common keys it gives another default or meaning."""
    common = SinkConfig.model_fields
    fields = model.model_fields
    added = {name: info for name, info in fields.items() if name not in common}
    changed = {
        name: info
        for name, info in fields.items()
        if name in common and name != "type" and repr(info) != repr(common[name])
    }
    return _rows({**added, **changed})


def tables() -> dict[str, str]:
    """Every table by name: ``common``, then each built-in sink type."""
    out = {"common": common_table()}
    for sink in registry.BUILTIN:
        out[sink.type] = key_table(registry.config_model(sink))
    return out


def update_readme(text: str) -> str:
    """``text`` with every ``<!-- keys:NAME -->`` block made current."""
    current = tables()

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in current:
            raise KeyError(f"README block keys:{name}: no sink type {name!r}")
        return match.group(1) + current[name] + match.group(4)

    return _BLOCK.sub(fill, text)


def blocks(text: str) -> dict[str, str]:
    """The ``<!-- keys:NAME -->`` blocks of ``text``, by name."""
    return {m.group(2): m.group(3) for m in _BLOCK.finditer(text)}


def main(argv: list[str]) -> int:
    for path in argv:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        new = update_readme(text)
        if new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
