"""Reading TRACE_* variables from their sources and merging them, remembering where each came from.

Sources, lowest precedence first: the ``.env`` file, the profile file ``.env.<profile>``, the
secrets directory (one file per variable), then the process environment. Each source is a flat
set of ``TRACE_*`` variables; they are exploded into one tree, where ``__`` nests a key and a
number after ``TRACE_HANDLERS__`` is a list index (``TRACE_HANDLERS__0__TYPE=sqlite``).
``TRACE_HANDLERS`` itself takes a JSON list. A JSON list replaces the handlers of lower
sources; indexed variables change single keys of one handler, whatever the source that defined
it. Every leaf remembers its :class:`Origin`, so errors and ``config show`` name the variable
and the file that set it.

This module (with ``_settings``) is the only one that reads the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from workflow_traces.errors import ConfigError
from workflow_traces.settings.config import (
    EnvStyle,
    Loc,
    complex_fields,
    handler_model,
    is_secret_key,
    secret_fields,
)

__all__ = [
    "ARGUMENTS",
    "DEFAULT",
    "DOTENV",
    "ENVIRONMENT",
    "EXTRAS",
    "PREFIX",
    "PROFILE",
    "SECRETS",
    "Layer",
    "Origin",
    "OriginStyle",
    "Reading",
    "environment_layer",
    "json_path",
    "read_sources",
    "stamp",
]

PREFIX = "TRACE_"
#: Variables under these prefixes belong to someone else (our test suites) and are ignored.
IGNORED_PREFIXES = ("TRACE_TEST_",)
#: The short alias of TRACE_TRACE_TYPE.
ALIASES = {"type": "trace_type"}

DEFAULT = "default"
DOTENV = ".env file"
PROFILE = "profile file"
SECRETS = "secrets dir"
ENVIRONMENT = "environment"
ARGUMENTS = "arguments"
EXTRAS = "extras"

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def json_path(loc: Loc) -> str:
    """``[1].buffer_size`` for (1, "buffer_size")."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


@dataclass(frozen=True)
class Origin:
    """Where one value came from: the source, the variable (or key) that set it, the location
    that variable sets (``base``: the whole list for TRACE_HANDLERS), the file for .env,
    profile and secret files, and whether the value is the variable's raw text."""

    source: str
    var: str
    base: Loc
    file: str | None = None
    raw: bool = True

    def name(self, loc: Loc) -> str:
        """The variable and, inside a JSON value, the path: ``TRACE_HANDLERS[1].path``. A
        value the variable gives elsewhere (TRACE_PATH as a handler's path) is the variable."""
        if loc[: len(self.base)] != self.base:
            return self.var
        return self.var + json_path(loc[len(self.base) :])

    def describe(self, loc: Loc) -> str:
        """``environment: TRACE_PATH`` or ``profile file .env.production: TRACE_PATH``."""
        if self.source == DEFAULT:
            return f"default ({self.var})" if self.var else DEFAULT
        where = f"{self.source} {self.file}" if self.file else self.source
        return f"{where}: {self.name(loc)}"


@dataclass(frozen=True)
class Layer:
    """One source's variables: upper-cased ``TRACE_*`` name -> text."""

    source: str
    file: str | None
    variables: dict[str, str]


#: A file's identity for the settings cache: (mtime_ns, size, inode), or None when missing.
FileStamp = tuple[int, int, int] | None


def stamp(path: str | os.PathLike[str]) -> FileStamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass
class Reading:
    """The merged tree of every source, each leaf's origin, and the files consulted (with their
    stamps, so a cache can tell whether anything changed)."""

    tree: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, Origin] = field(default_factory=dict)
    files: dict[str, FileStamp] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    profile: str | None = None
    env_file: str = ".env"
    secrets_dir: str | None = None


# -- reading each source ---------------------------------------------------------------------------
def _ours(name: str) -> bool:
    up = name.upper()
    return up.startswith(PREFIX) and not up.startswith(IGNORED_PREFIXES)


def environment_layer(environ: Mapping[str, str] | None = None) -> Layer:
    """The TRACE_* variables of the process environment (empty values count as unset)."""
    env = os.environ if environ is None else environ
    # Keys first: decoding every value of os.environ costs more than the rest of a load().
    names = [k for k in env if k[:6].upper() == PREFIX and _ours(k)]
    return Layer(ENVIRONMENT, None, {k.upper(): v for k in names if (v := env[k]) != ""})


def dotenv_layer(path: str, source: str) -> Layer | None:
    """The TRACE_* variables of a .env file, or None when there is no such file. Values are
    taken literally: no ``${VAR}`` expansion (a password may hold a ``$``)."""
    if not os.path.isfile(path):
        return None
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__})") from None
    return Layer(
        source,
        path,
        {k.upper(): v for k, v in values.items() if v is not None and v != "" and _ours(k)},
    )


def secrets_layer(directory: str) -> Layer:
    """One variable per file in ``directory`` (as Docker and Kubernetes mount secrets): the file
    name is the variable's name, its content the value. Other files are ignored."""
    if not os.path.isdir(directory):
        raise ConfigError(f"TRACE_SECRETS_DIR: expected a directory, got {directory!r}")
    found: dict[str, str] = {}
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.name.startswith(".") or not _ours(entry.name) or not entry.is_file():
            continue
        try:
            value = Path(entry.path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{entry.path}: cannot read ({type(exc).__name__})") from None
        if value:
            found[entry.name.upper()] = value
    return Layer(SECRETS, directory, found)


def _secrets_stamps(directory: str) -> dict[str, FileStamp]:
    out = {directory: stamp(directory)}
    try:
        for entry in os.scandir(directory):
            if _ours(entry.name):
                out[entry.path] = stamp(entry.path)
    except OSError:
        pass
    return out


# -- exploding layers into one tree --------------------------------------------------------------
class _Tree:
    """Merges layers, lowest first. ``handlers`` is held as {index: {...}} until ``finish``."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.origins: dict[Loc, Origin] = {}
        self.problems: list[str] = []

    def _drop_origins(self, prefix: Loc) -> None:
        n = len(prefix)
        for loc in [loc for loc in self.origins if loc[:n] == prefix]:
            del self.origins[loc]

    def _set(self, loc: Loc, value: Any, origin: Origin) -> None:
        node: Any = self.tree
        for i, part in enumerate(loc[:-1]):
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                self._drop_origins(loc[: i + 1])
                nxt = node[part] = {}
            node = nxt
        self._drop_origins(loc)
        node[loc[-1]] = value
        self._add_origins(loc, value, origin)

    def _add_origins(self, loc: Loc, value: Any, origin: Origin) -> None:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                self._add_origins((*loc, key), sub, origin)
        else:
            self.origins[loc] = origin

    def add(self, layer: Layer) -> None:
        variables = dict(layer.variables)
        if "TRACE_TYPE" in variables and "TRACE_TRACE_TYPE" in variables:
            if variables["TRACE_TYPE"] != variables["TRACE_TRACE_TYPE"]:
                self.problems.append(
                    f"TRACE_TYPE: conflicts with TRACE_TRACE_TYPE in the same source"
                    f"{_in(layer.file)}; set only one of them"
                )
            del variables["TRACE_TYPE"]
        # Shallow names first: a JSON list, then the indexed variables that refine it.
        for name in sorted(variables, key=lambda n: (n.count("__"), n)):
            value = variables[name]
            parts = name[len(PREFIX) :].split("__")
            key = parts[0].lower()
            if len(parts) == 1:
                key = ALIASES.get(key, key)
            if key != "handlers":
                loc: Loc = (key, *(p.lower() for p in parts[1:]))
                self._set(loc, value, Origin(layer.source, name, loc, layer.file))
            elif len(parts) == 1:
                decoded = self._json(name, value, list, layer, "a JSON list of handler objects")
                if decoded is not None:
                    items = {i: item for i, item in enumerate(decoded)}
                    self._set(("handlers",), items, _json(layer, name, ("handlers",)))
            elif not parts[1].isdigit():
                self.problems.append(
                    f"{name}: expected a handler index after TRACE_HANDLERS__, such as "
                    f"TRACE_HANDLERS__0__TYPE{_in(layer.file)}"
                )
            elif len(parts) == 2:
                item = self._json(name, value, dict, layer, "a JSON object for one handler")
                if item is not None:
                    loc = ("handlers", int(parts[1]))
                    self.tree.setdefault("handlers", {})
                    self._set(loc, item, _json(layer, name, loc))
            else:
                loc = ("handlers", int(parts[1]), *(p.lower() for p in parts[2:]))
                self.tree.setdefault("handlers", {})
                self._set(loc, value, Origin(layer.source, name, loc, layer.file))

    def _json(self, name: str, value: str, kind: type, layer: Layer, what: str) -> Any:
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as exc:
            # The position only: the text may hold a secret.
            self.problems.append(
                f"{name}: expected {what}, got invalid JSON "
                f"(line {exc.lineno} column {exc.colno}){_in(layer.file)}"
            )
            return None
        if not isinstance(decoded, kind):
            names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
            got = names.get(type(decoded), f"a {type(decoded).__name__}")
            self.problems.append(f"{name}: expected {what}, got {got}{_in(layer.file)}")
            return None
        return decoded

    def finish(self) -> None:
        """Turn ``handlers`` back into a list (indexes must run 0, 1, 2, ... without gaps),
        decode JSON given for list/dict keys, and wrap secrets in SecretStr."""
        handlers = self.tree.get("handlers")
        if not isinstance(handlers, dict):
            return
        indexes = sorted(handlers)
        for expected, index in enumerate(indexes):
            if index != expected:
                origin = next(o for k, o in self.origins.items() if k[:2] == ("handlers", index))
                self.problems.append(
                    f"{origin.var}: handler indexes must run 0, 1, 2, ... without gaps; "
                    f"nothing sets handler {expected} (such as TRACE_HANDLERS__{expected}__TYPE)"
                    f"{_in(origin.file)}"
                )
                return
        items = [handlers[i] for i in indexes]
        for index, item in enumerate(items):
            if isinstance(item, dict):
                self._refine(index, item)
        self.tree["handlers"] = items

    def _refine(self, index: int, item: dict[str, Any]) -> None:
        model = handler_model(item.get("type"))
        wants_json = complex_fields(model) if model else frozenset()
        secrets = secret_fields(model) if model else frozenset()
        for key, given in list(item.items()):
            value = given
            origin = self.origins.get(("handlers", index, key))
            if (
                key in wants_json
                and isinstance(value, str)
                and origin is not None
                and origin.raw
                and value.lstrip()[:1] in ("[", "{")
            ):
                # Left as text when it is not JSON: the model then says what it expected.
                with contextlib.suppress(ValueError):
                    item[key] = value = json.loads(value)
            if isinstance(value, str) and (key in secrets or is_secret_key(key)):
                item[key] = SecretStr(value)
            elif isinstance(value, dict) and key in secrets:
                item[key] = {k: SecretStr(v) if isinstance(v, str) else v for k, v in value.items()}


def _json(layer: Layer, name: str, base: Loc) -> Origin:
    return Origin(layer.source, name, base, layer.file, raw=False)


def _in(file: str | None) -> str:
    return f" (set in {file})" if file else ""


# -- naming errors after their variables --------------------------------------------------------
def _common(a: Loc, b: Loc) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class OriginStyle(EnvStyle):
    """Names a location by the variable that set it (``TRACE_HANDLERS__1__BUFFER_SIZE``, or
    ``TRACE_HANDLERS[1].buffer_size`` inside a JSON value), adds the file it was set in, and
    shows a variable's raw text as the user typed it."""

    def __init__(self, origins: Mapping[Loc, Origin]) -> None:
        super().__init__()
        self.origins = origins

    def _nearest(self, loc: Loc) -> Origin | None:
        """The origin of ``loc``, or of the value that holds it (the handler it belongs to)."""
        if loc in self.origins:
            return self.origins[loc]
        best, depth = None, 0
        for key, origin in self.origins.items():
            n = _common(key, loc)
            if n > depth and (n >= 2 or origin.base == key[:n]):
                best, depth = origin, n
        return best

    def name(self, loc: Loc) -> str:
        origin = self._nearest(loc)
        if origin is not None and loc[: len(origin.base)] == origin.base:
            return origin.name(loc)
        return super().name(loc)

    def suggest(self, bad: Loc, good: str) -> str:
        origin = self.origins.get(bad)
        if origin is None:
            return super().suggest(bad, good)
        if not origin.raw:
            return origin.name((*bad[:-1], good))
        head, sep, _ = origin.var.rpartition("__")
        return f"{head}{sep}{good.upper()}" if sep else PREFIX + good.upper()

    def show(self, loc: Loc, value: Any) -> str:
        origin = self.origins.get(loc)
        if isinstance(value, str) and value and origin is not None and origin.raw:
            return value
        return repr(value)

    def where(self, loc: Loc) -> str:
        origin = self._nearest(loc)
        return _in(origin.file) if origin is not None else ""


# -- all together ------------------------------------------------------------------------------
def _pick(name: str, *layers: Layer | None) -> str | None:
    """The value of ``name`` in the highest of ``layers`` that sets it."""
    for layer in layers:
        if layer is not None and name in layer.variables:
            return layer.variables[name]
    return None


def read_sources(
    profile: str | None = None,
    env_file: str | os.PathLike[str] | None = None,
    secrets_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Reading:
    """Read every source and merge them. Arguments win over the TRACE_PROFILE, TRACE_ENV_FILE
    and TRACE_SECRETS_DIR variables. Raises ConfigError listing every problem found."""
    env = environment_layer(environ)
    reading = Reading()
    env_path = str(env_file) if env_file is not None else _pick("TRACE_ENV_FILE", env) or ".env"
    reading.env_file = env_path
    reading.files[os.path.abspath(env_path)] = stamp(env_path)
    base = dotenv_layer(env_path, DOTENV)
    problems: list[str] = []

    name = profile if profile is not None else _pick("TRACE_PROFILE", env, base)
    prof_layer = None
    if name:
        if not _PROFILE_NAME.match(name):
            problems.append(
                f"TRACE_PROFILE: expected a name of letters, digits, '.', '_' or '-', got {name!r}"
            )
        else:
            prof_path = f"{env_path}.{name}"
            reading.files[os.path.abspath(prof_path)] = stamp(prof_path)
            prof_layer = dotenv_layer(prof_path, PROFILE)
            if prof_layer is None:
                problems.append(
                    f"TRACE_PROFILE: no profile file {prof_path} for profile {name!r} "
                    f"(looked in {os.path.abspath(os.path.dirname(prof_path) or '.')})"
                )
    reading.profile = name or None

    sdir = (
        str(secrets_dir)
        if secrets_dir is not None
        else _pick("TRACE_SECRETS_DIR", env, prof_layer, base)
    )
    secrets = None
    if sdir:
        reading.secrets_dir = sdir
        reading.files.update(_secrets_stamps(sdir))
        try:
            secrets = secrets_layer(sdir)
        except ConfigError as exc:
            problems.append(str(exc))

    merged = _Tree()
    for layer in (base, prof_layer, secrets, env):
        if layer is not None:
            reading.layers.append(layer)
            merged.add(layer)
    merged.finish()
    problems.extend(merged.problems)
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))
    # What was used to find the files is itself part of the effective configuration.
    merged.tree["profile"] = reading.profile
    merged.tree["env_file"] = env_path
    merged.tree["secrets_dir"] = reading.secrets_dir
    for key, given in (("profile", profile), ("env_file", env_file), ("secrets_dir", secrets_dir)):
        if given is not None:
            merged.origins[(key,)] = Origin(ARGUMENTS, key, (key,), raw=False)
    reading.tree, reading.origins = merged.tree, merged.origins
    return reading
