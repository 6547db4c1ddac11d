"""Reading a DAG workflow definition from a YAML or TOML file (see ``dag.load_workflow``).

This module checks a definition and returns the parts of a ``Workflow`` (:class:`Definition`);
``_dag_workflow`` makes the Workflow from them. It does not import ``_dag_workflow``, so the two
do not import each other."""

from __future__ import annotations

import difflib
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from workflow_traces import ConfigError

from ._dag_command import command
from ._dag_model import Job, Stage, WorkflowDefinitionError

__all__ = ["Definition", "definition_from_dict", "read_definition"]

_WORKFLOW_KEYS = ("name", "jobs", "max_workers", "params", "trace")
_JOB_KEYS = ("name", "stages", "needs")
_STAGE_KEYS = ("name", "fn", "command", "retries", "timeout", "retry_delay")


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the workflow file: {exc.strerror}") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                f"{path}: reading YAML needs PyYAML: pip install 'workflow-traces[yaml]'"
            ) from None
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    raise ConfigError(f"{path}: expected a .yaml, .yml or .toml file, got {suffix or 'none'!r}")


def _unknown(where: str, data: Mapping[str, Any], valid: tuple[str, ...]) -> list[str]:
    problems = []
    for key in data:
        if key not in valid:
            match = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            problems.append(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(valid)}")
    return problems


class Definition(NamedTuple):
    """A checked definition: the arguments of ``Workflow(name, jobs, max_workers, params=...,
    extras=...)``."""

    name: Any
    jobs: list[Job]
    max_workers: Any
    params: Any
    extras: Any


def definition_from_dict(data: Any, source: str = "<dict>") -> Definition:
    """The parts of a Workflow from a parsed definition; every problem is listed in one error.
    (What only the Workflow checks, such as cyclic ``needs``, it reports itself.)"""
    if not isinstance(data, Mapping):
        raise WorkflowDefinitionError(
            f"{source}: expected a mapping at the top, got {type(data).__name__}"
        )
    problems = _unknown("workflow", data, _WORKFLOW_KEYS)
    for key, kind in (("params", Mapping), ("trace", Mapping), ("jobs", list)):
        if key in data and not isinstance(data[key], kind):
            want = "a list" if kind is list else "a mapping"
            problems.append(f"{key}: expected {want}, got {type(data[key]).__name__}")
    if "name" not in data:
        problems.append("name: is required")
    if "jobs" not in data:
        problems.append("jobs: is required")
    jobs: list[Job] = []
    raw_jobs: list[Any] = data["jobs"] if isinstance(data.get("jobs"), list) else []
    for i, raw_job in enumerate(raw_jobs):
        where = f"jobs[{i}]"
        if not isinstance(raw_job, Mapping):
            problems.append(f"{where}: expected a mapping, got {type(raw_job).__name__}")
            continue
        problems += _unknown(where, raw_job, _JOB_KEYS)
        needs = raw_job.get("needs", [])
        if isinstance(needs, str):
            needs = [needs]
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            problems.append(f"{where}.needs: expected a list of job names, got {needs!r}")
            needs = []
        stages: list[Stage] = []
        raw_stages = raw_job.get("stages")
        if not isinstance(raw_stages, list):
            problems.append(f"{where}.stages: expected a list, got {type(raw_stages).__name__}")
            raw_stages = []
        for k, raw_stage in enumerate(raw_stages):
            at = f"{where}.stages[{k}]"
            if not isinstance(raw_stage, Mapping):
                problems.append(f"{at}: expected a mapping, got {type(raw_stage).__name__}")
                continue
            problems += _unknown(at, raw_stage, _STAGE_KEYS)
            fn: Any = raw_stage.get("fn")
            if "command" in raw_stage:
                if "fn" in raw_stage:
                    problems.append(f"{at}: give either fn or command, not both")
                    continue
                cmd = raw_stage["command"]
                if not (isinstance(cmd, str) and cmd.strip()) and not (
                    isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd)
                ):
                    problems.append(
                        f"{at}.command: expected a command line (a string) or a list of "
                        f"strings (a program and its arguments), got {cmd!r}"
                    )
                    continue
                fn = command(cmd)
            elif not isinstance(fn, str):
                problems.append(f"{at}.fn: expected an import path 'pkg.mod:func', got {fn!r}")
                continue
            stages.append(
                Stage(
                    name=raw_stage.get("name", ""),
                    fn=fn,
                    retries=raw_stage.get("retries", 0),
                    timeout=raw_stage.get("timeout"),
                    retry_delay=raw_stage.get("retry_delay", 0.0),
                )
            )
        jobs.append(Job(name=raw_job.get("name", ""), stages=stages, needs=needs))
    if problems:
        text = "\n".join(f"  - {p}" for p in problems)
        raise WorkflowDefinitionError(f"{source}: the workflow definition is invalid:\n{text}")
    return Definition(
        data["name"], jobs, data.get("max_workers"), data.get("params"), data.get("trace")
    )


def read_definition(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """A definition file's parsed content, and its path for messages. Its folder goes first on
    ``sys.path`` (and the current folder last) so that ``fn`` paths can name modules that sit
    next to it."""
    file = Path(path)
    data = _read(file)
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    return data, str(file)
