"""A DAG stage that runs a command in a child process (``command``), which joins the run: the
stage hands it ``context_env()`` with the rest of the environment, so ``get_trace()`` in it
logs into the stage's run, names and trace (see ``workflow_traces.core.propagation``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from workflow_traces import context_env

from ._dag_model import StageTimeoutError

__all__ = ["Command", "command"]


class Command:
    """A stage's work as a command; made by :func:`command`. Called with no arguments, it runs
    the command once and returns its standard output (``capture=True``) or None; it raises
    ``subprocess.CalledProcessError`` when the command exits non-zero."""

    def __init__(
        self,
        args: str | Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        capture: bool = False,
    ) -> None:
        if isinstance(args, str):
            if not args.strip():
                raise ValueError("command: expected a command line, got an empty string")
            self.args: str | tuple[str, ...] = args
        else:
            items = tuple(args)
            if not items or not all(isinstance(a, str | os.PathLike) for a in items):
                raise ValueError(
                    "command: expected a command line (a string) or a non-empty list of "
                    f"strings, got {args!r}"
                )
            self.args = tuple(os.fspath(a) for a in items)
        if env is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise ValueError(f"command env: expected a mapping of strings to strings, got {env!r}")
        self.cwd = None if cwd is None else Path(cwd)
        self.env = dict(env or {})
        self.capture = capture

    @property
    def shell(self) -> bool:
        """True when the command is a command line, run by ``/bin/sh -c``."""
        return isinstance(self.args, str)

    def run(self, timeout: float | None = None) -> str | None:
        """Run the command once, with ``context_env()`` of the scope it is called in merged over
        this process's environment and ``env``; kill it after ``timeout`` seconds."""
        environ = {**os.environ, **self.env, **context_env()}
        try:
            done = subprocess.run(
                self.args,
                shell=self.shell,
                cwd=self.cwd,
                env=environ,
                stdout=subprocess.PIPE if self.capture else None,
                text=self.capture or None,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StageTimeoutError(
                f"command {self._shown()} did not finish within {timeout}s and was killed"
            ) from None
        if done.returncode != 0:
            cmd = self.args if self.shell else list(self.args)
            raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout)
        return done.stdout if self.capture else None

    def __call__(self) -> str | None:
        return self.run()

    def _shown(self) -> str:
        return repr(self.args if self.shell else list(self.args))

    def __repr__(self) -> str:
        return f"command({self._shown()})"


def command(
    args: str | Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
) -> Command:
    """A stage's work that runs a command: ``Stage("load", command(["python", "load.py"]))``.

    A string is a command line run by ``/bin/sh -c``; a list is a program and its arguments,
    run without a shell. The child process gets this process's environment, ``env`` over it,
    and the stage's trace context (``context_env()``) over both, so it joins the run. Its
    standard output and error go where the runner's go; with ``capture=True`` the standard
    output is read instead and becomes the stage's output (a string). A non-zero exit status
    fails the stage (``subprocess.CalledProcessError``); the stage's ``timeout`` kills it."""
    return Command(args, cwd=cwd, env=env, capture=capture)
