"""Which static label names each REST format takes, checked when the configuration is read.

Each format has its own rules:

- Loki (``grafana``): Prometheus label names, ``[a-zA-Z_][a-zA-Z0-9_]*``.
- OTLP: OpenTelemetry attribute names, dot-separated namespaces such as
  ``deployment.environment`` or ``service.namespace``: a letter or ``_`` first, then letters,
  digits, ``_``, ``-`` and ``.``, no empty part between dots.
- Datadog: a tag key must start with a letter (Datadog's tagging requirements); the rest is
  normalized when the tag is built (see ``datadog.normalize_tag``).
- generic json/ndjson and CloudWatch do not send labels: any non-empty name.
"""

from __future__ import annotations

import re

__all__ = ["label_name_problem"]

_LOKI = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OTLP = re.compile(r"[a-zA-Z_][a-zA-Z0-9_\-]*(?:\.[a-zA-Z0-9_\-]+)*")


def label_name_problem(service_type: str, fmt: str, name: str) -> str | None:
    """Why ``name`` cannot be a label of this service and format, or None when it can."""
    if service_type == "grafana":
        if not _LOKI.fullmatch(name):
            return f"label name {name!r} must match [a-zA-Z_][a-zA-Z0-9_]* (Loki label names)"
        return None
    if service_type == "generic" and fmt == "otlp":
        if not _OTLP.fullmatch(name):
            return (
                f"attribute name {name!r} must be dot-separated parts of letters, digits, '_' "
                "and '-', starting with a letter or '_' (OpenTelemetry names, such as "
                "deployment.environment)"
            )
        return None
    if service_type == "datadog":
        if not name[:1].isalpha():
            return f"tag key {name!r} must start with a letter (Datadog tags)"
        return None
    if not name:
        return "label names must not be empty"
    return None
