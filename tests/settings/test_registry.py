"""The sink registry: every sink type comes from one table (built-ins, then entry points), and
validation, the factory, ``config check`` and the README's key tables all come from it. The
example third-party sink (``examples/custom_sink``, installed by ``make install``) is used end to
end through TRACE_HANDLERS in a fresh process."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, get_args

import pytest

import workflow_traces
from workflow_traces import ConfigError, get_trace
from workflow_traces.exporters import Sink, SinkConfig, registry
from workflow_traces.settings import keytables
from workflow_traces.settings.config import HandlerConfig, validate_handler
from workflow_traces.settings.factory import build_handler
from workflow_traces.settings.probe import probe

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE = ROOT / "examples" / "custom_sink" / "workflow_traces_csv" / "__init__.py"
BUILTIN = ("file", "sqlite", "restapi", "elasticsearch", "opensearch", "memory")
CLI = Path(sys.executable).parent / "workflow-traces"


def test_the_built_in_types_come_first_then_the_installed_plugins() -> None:
    assert registry.types()[: len(BUILTIN)] == BUILTIN
    assert tuple(s.type for s in registry.BUILTIN) == BUILTIN
    assert "csv" in registry.types()  # examples/custom_sink, installed by make install


def test_the_handler_union_is_made_of_the_registered_models() -> None:
    union = get_args(HandlerConfig)[0]
    models = {registry.config_model(s) for s in registry.sinks().values()}
    assert set(get_args(union)) == models
    for kind, sink in registry.sinks().items():
        model = registry.config_model(sink)
        assert issubclass(model, SinkConfig)
        assert model.model_fields["type"].default == kind


def test_every_built_in_type_builds_its_handler(tmp_path: Path) -> None:
    keys: dict[str, dict[str, Any]] = {
        "file": {"path": str(tmp_path / "logs")},
        "sqlite": {"path": str(tmp_path / "t.db")},
        "restapi": {"api_url": "http://127.0.0.1:9"},
        "elasticsearch": {"es_hosts": "http://127.0.0.1:9"},
        "opensearch": {"es_hosts": "http://127.0.0.1:9"},
        "memory": {"name": "built"},
    }
    expected = {
        "file": "WorkflowFileHandler",
        "sqlite": "SQLiteHandler",
        "restapi": "RestAPIHandler",
        "elasticsearch": "ElasticsearchHandler",
        "opensearch": "OpenSearchHandler",
        "memory": "BufferedHandler",
    }
    for kind in BUILTIN:
        cfg = validate_handler({"type": kind, **keys[kind], "buffer_size": 7, "level": "INFO"})
        handler = build_handler(cfg, "r1", None, {}, fail_silently=True)
        try:
            assert type(handler).__name__ == expected[kind]
            assert handler.level == logging.INFO
        finally:
            handler.close()


def test_a_sink_needs_an_exporter_or_a_handler() -> None:
    with pytest.raises(ValueError, match="give exporter or handler"):
        Sink("nothing", SinkConfig)


# -- the README --------------------------------------------------------------------------------
def test_the_readme_key_tables_are_the_models() -> None:
    text = README.read_text(encoding="utf-8")
    found = keytables.blocks(text)
    assert set(found) == {"common", *BUILTIN}
    assert keytables.update_readme(text) == text, (
        "README key tables are stale: run python -m workflow_traces.settings.keytables README.md"
    )
    # Each built-in type's table lists every key of its model that the common table does not.
    common = set(SinkConfig.model_fields)
    for sink in registry.BUILTIN:
        model = registry.config_model(sink)
        listed = set(re.findall(r"^\| `(\w+)` \|", found[sink.type], re.MULTILINE))
        assert set(model.model_fields) - common - {"type"} <= listed


def test_the_readme_example_sink_is_the_example_package() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- example:custom_sink -->\n```python\n(.*?)```\n", text, re.DOTALL)
    assert block is not None
    assert block.group(1) == EXAMPLE.read_text(encoding="utf-8")


# -- the example third-party sink, end to end ---------------------------------------------------
SCRIPT = """
import json
from workflow_traces import get_trace
from workflow_traces.testing import capture_traces

with capture_traces() as captured:
    trace = get_trace("r1")
    for i in range(250):
        trace.info(f"row {i}")
    trace.close()
print(json.dumps({"ids": [r.record_id for r in captured], "types": trace.handler_types,
                  "health": {k: v.written for k, v in trace.health().items()}}))
"""


def _run(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_csv_sink_runs_from_trace_handlers(tmp_path: Path) -> None:
    env = {"TRACE_HANDLERS": json.dumps([{"type": "csv", "path": "out/traces.csv"}])}
    done = _run(tmp_path, env, sys.executable, "-c", SCRIPT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["types"] == ["BufferedHandler"]  # a plain sink: the registry wraps its exporter
    with open(tmp_path / "out" / "traces.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(result["ids"]) == 250
    assert [r["record_id"] for r in rows] == result["ids"]  # every record, once, in order
    assert [r["message"] for r in rows] == [f"row {i}" for i in range(250)]
    assert list(result["health"].values()) == [250]

    check = _run(tmp_path, env, str(CLI), "config", "check")
    assert check.returncode == 0, check.stderr
    assert "ok   handlers[0] csv out/traces.csv: wrote a probe record" in check.stdout
    assert "1 of 1 sink(s) ok" in check.stdout


def test_the_example_sink_is_validated_like_a_built_in_one() -> None:
    with pytest.raises(ConfigError) as info:
        get_trace("r1", extras={"handlers": [{"type": "csv", "pth": "x.csv"}]})
    assert str(info.value).splitlines()[0] == (
        "handlers[0].pth: unknown key (did you mean 'path'?); valid keys: block_timeout, "
        "buffer_size, flush_interval, level, max_records_per_second, overflow, path, queue_bytes, "
        "queue_size, redact, redact_keys, redact_patterns, sample"
    )
    with pytest.raises(ConfigError, match=r"handlers\[0\]\.buffer_size: must be > 0, got 0"):
        get_trace("r1", extras={"handlers": [{"type": "csv", "buffer_size": 0}]})


def test_a_failing_example_sink_is_counted_not_raised_into_the_caller(tmp_path: Path) -> None:
    (tmp_path / "a-folder.csv").mkdir()  # the sink raises PermanentError: not retried
    trace = get_trace("r1", extras={"handlers": [{"type": "csv", "path": "a-folder.csv"}]})
    trace.info("lost")
    trace.close()
    (health,) = trace.health().values()
    assert (health.written, health.failed) == (0, 1)
    assert health.last_error == "PermanentError: a-folder.csv is a folder"


# -- plugins that cannot be used -----------------------------------------------------------------
def _fake_distribution(folder: Path, entry: str, module: str, code: str) -> None:
    """A real installed distribution (a .dist-info folder on sys.path) with one entry point."""
    dist = folder / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[workflow_traces.sinks]\n{entry}\n")
    (folder / f"{module}.py").write_text(code)


PLUGIN_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
from workflow_traces.exporters import registry
print("types:", ",".join(registry.types()))
"""


@pytest.mark.parametrize(
    ("entry", "code", "why"),
    [
        ("kaputt = kaputt_sink:SINK", "raise RuntimeError('no luck')", "RuntimeError: no luck"),
        ("kaputt = kaputt_sink:SINK", "SINK = 42", "must name a workflow_traces.exporters.Sink"),
        (
            "kaputt = kaputt_sink:SINK",
            "from workflow_traces.exporters import Sink, SinkConfig\n"
            "SINK = Sink('kaputt', SinkConfig, exporter=print)\n",
            "whose type field is not Literal['kaputt']",
        ),
        (
            "file = kaputt_sink:SINK",
            "from workflow_traces.exporters import Sink\n"
            "from workflow_traces.settings.sinks import FileConfig\n"
            "SINK = Sink('file', FileConfig, exporter=print)\n",
            "a sink type of that name is already registered",
        ),
    ],
)
def test_a_plugin_that_cannot_be_used_is_left_out_with_one_error(
    tmp_path: Path, entry: str, code: str, why: str
) -> None:
    _fake_distribution(tmp_path / "site", entry, "kaputt_sink", code)
    env = {"PYTHONPATH": str(tmp_path / "site")}
    done = _run(tmp_path, env, sys.executable, "-c", PLUGIN_SCRIPT)
    assert done.returncode == 0, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and why in errors[0], done.stdout
    types = done.stdout.splitlines()[-1].removeprefix("types: ").split(",")
    assert types[: len(BUILTIN)] == list(BUILTIN) and "kaputt" not in types
    assert "csv" in types  # the good plugin still loads


def test_import_workflow_traces_reads_no_entry_point() -> None:
    code = (
        "import sys, workflow_traces\n"
        "from workflow_traces.exporters import registry\n"
        "print(registry._sinks is None, 'pydantic' in sys.modules, 'workflow_traces_csv' in "
        "sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "False", "False"]


def test_the_probe_of_a_sink_without_endpoints_writes_through_it() -> None:
    from workflow_traces.testing import memory_sink

    sink = memory_sink("probed")
    sink.clear()
    result = probe(validate_handler({"type": "memory", "name": "probed"}))
    assert result.ok, result.detail
    assert [r.run_id for r in sink] == ["workflow-traces-config-check"]


def test_public_names_of_the_exporter_interface() -> None:
    from workflow_traces import exporters

    assert set(exporters.__all__) == {
        "ENTRY_POINT_GROUP",
        "ExportResult",
        "Exporter",
        "NetworkSinkConfig",
        "Sink",
        "SinkConfig",
        "SinkContext",
    }
    assert exporters.ENTRY_POINT_GROUP == "workflow_traces.sinks"
    assert workflow_traces.Exporter is exporters.Exporter
    assert textwrap.dedent(exporters.SinkConfig.__doc__ or "")
