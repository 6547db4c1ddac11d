"""``workflow-traces config show`` and ``config check``: the effective TRACE_* configuration.

``show [--profile NAME] [--env-file PATH] [--secrets-dir DIR] [--extras JSON] [--json]`` prints
each effective value and where it came from (default, .env file, profile file, secrets dir,
environment, arguments, extras); secrets print as ``**********``.

``check`` validates the same configuration and tries each sink once (see ``_probe``): one line a
sink, ``ok`` or ``FAIL``; failing lines go to stderr.

Exit status: 0 all good; 1 a sink failed its check; 2 the configuration is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workflow_traces.errors import ConfigError

__all__ = ["add_parser"]

_MASK = "**********"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show or check the TRACE_* configuration",
        description="The configuration get_trace() builds from TRACE_* variables, .env files "
        "and the secrets directory.",
    )
    sub = parser.add_subparsers(dest="config_command", required=True)
    show = sub.add_parser("show", help="each effective value and where it came from")
    _common(show)
    show.add_argument(
        "--extras", default=None, metavar="JSON", help="extras as get_trace would get them"
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)
    check = sub.add_parser("check", help="validate and try each sink once")
    _common(check)
    check.add_argument(
        "--timeout", type=float, default=3.0, help="seconds per network check (default 3)"
    )
    check.set_defaults(func=_check)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None, help="read .env.NAME over .env")
    parser.add_argument("--env-file", default=None, help="the base .env file (default .env)")
    parser.add_argument("--secrets-dir", default=None, help="a directory of secret files")


def _effective(args: argparse.Namespace, extras: dict[str, Any] | None = None) -> Any:
    from workflow_traces.settings.effective import resolve
    from workflow_traces.settings.model import TraceSettings

    settings = TraceSettings.load(args.profile, args.env_file, args.secrets_dir)
    return resolve(settings, extras)


def _fail_config(command: str, exc: ConfigError) -> int:
    for line in str(exc).splitlines():
        print(f"workflow-traces config {command}: {line}", file=sys.stderr)
    return 2


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _plain(loc: tuple[int | str, ...], value: Any) -> Any:
    """A JSON-safe value, secrets masked."""
    from workflow_traces.settings.config import is_secret_key

    if hasattr(value, "get_secret_value"):
        return _MASK
    if isinstance(value, str) and value and is_secret_key(loc[-1]):
        return _MASK
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(loc, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain((*loc, str(k)), v) for k, v in value.items()}
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _show(args: argparse.Namespace) -> int:
    from workflow_traces.settings.sources import DEFAULT

    extras = None
    if args.extras is not None:
        try:
            extras = json.loads(args.extras)
        except ValueError as exc:
            return _fail_config("show", ConfigError(f"--extras: expected a JSON object ({exc})"))
        if not isinstance(extras, dict):
            return _fail_config("show", ConfigError("--extras: expected a JSON object"))
    try:
        eff = _effective(args, extras)
    except ConfigError as exc:
        return _fail_config("show", exc)
    rows = []
    for loc, value in eff.entries():
        origin = eff.origin(loc)
        rows.append(
            {
                "key": _key(loc),
                "value": _plain(loc, value),
                "source": origin.source,
                "variable": origin.name(loc) if origin.source != DEFAULT else None,
                "file": origin.file,
            }
        )
    files = {path: st is not None for path, st in eff.settings.files.items()}
    if args.json:
        out = {"profile": eff.settings.profile, "files": files, "values": rows}
        print(json.dumps(out, indent=2))
        return 0
    settings = eff.settings
    print(f"env file:    {settings.env_file} ({_found(files, settings.env_file)})")
    if settings.profile:
        prof = f"{settings.env_file}.{settings.profile}"
        print(f"profile:     {settings.profile} -> {prof} ({_found(files, prof)})")
    else:
        print("profile:     - (set TRACE_PROFILE or --profile to read .env.<profile>)")
    print(f"secrets dir: {settings.secrets_dir or '-'}")
    print()
    width = max(len(r["key"]) for r in rows)
    vwidth = min(40, max(len(_text(r["value"])) for r in rows))
    for row, (loc, _) in zip(rows, eff.entries(), strict=True):
        where = eff.origin(loc).describe(loc)
        print(f"{row['key']:<{width}}  {_text(row['value']):<{vwidth}}  {where}")
    return 0


def _found(files: dict[str, bool], path: str) -> str:
    import os

    return "read" if files.get(os.path.abspath(path)) else "not found"


def _check(args: argparse.Namespace) -> int:
    from workflow_traces.settings.probe import describe_sink, probe

    try:
        eff = _effective(args)
    except ConfigError as exc:
        return _fail_config("check", exc)
    failed = 0
    for index, cfg in enumerate(eff.handlers):
        result = probe(cfg, timeout=args.timeout)
        line = f"handlers[{index}] {describe_sink(cfg)}: {result.detail}"
        if result.ok:
            print(f"ok   {line}")
        else:
            failed += 1
            print(f"FAIL {line}", file=sys.stderr)
    total = len(eff.handlers)
    print(f"{total - failed} of {total} sink(s) ok")
    return 1 if failed else 0
