"""``logging.config.dictConfig`` building a MultiHandler with child handlers.

What dictConfig can express (Python 3.11):

* a handler by ``"class"`` or by a ``"()"`` factory, the other keys passed as keyword arguments;
* values that reference other parts of the configuration (``"cfg://handlers.name"``). A handler
  that dictConfig has already built replaces its own configuration, so such a reference gives
  the handler object; dictConfig builds handlers in name order, so children must sort first.

MultiHandler accepts both: handler objects (``cfg://`` references) and handler configuration
dicts (``{"type": "file", ...}``), which it builds itself like ``get_trace`` does.
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from robust_helpers import messages

from workflow_traces import MultiHandler, SQLiteHandler, WorkflowFileHandler


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """The logger the configurations below attach to; emptied and closed afterwards."""
    logger = logging.getLogger("dictconfig_app")
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _configure(handlers: dict[str, Any]) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": handlers,
            "loggers": {"dictconfig_app": {"handlers": ["multi"], "level": "DEBUG"}},
        }
    )


def _log_three(logger: logging.Logger) -> None:
    logger.debug("one")
    logger.info("two %s", "args")
    logger.error("three", extra={"order_id": 7})


def test_children_by_cfg_reference(tmp_path: Path, app_logger: logging.Logger) -> None:
    _configure(
        {
            "a_file": {
                "class": "workflow_traces.WorkflowFileHandler",
                "run_id": "dc-ref",
                "base_path": str(tmp_path / "files"),
                "extras": {"workflow_name": "dc"},
            },
            "b_sqlite": {
                "class": "workflow_traces.SQLiteHandler",
                "run_id": "dc-ref",
                "db_path": str(tmp_path / "t.db"),
                "level": "INFO",
            },
            "multi": {
                "class": "workflow_traces.MultiHandler",
                "run_id": "dc-ref",
                "handlers": ["cfg://handlers.a_file", "cfg://handlers.b_sqlite"],
            },
        }
    )
    (multi,) = app_logger.handlers
    assert isinstance(multi, MultiHandler)
    assert multi.handler_types == ["WorkflowFileHandler", "SQLiteHandler"]
    _log_three(app_logger)
    multi.close()
    assert messages(tmp_path / "files", "dc-ref") == ["one", "two args", "three"]
    # The SQLite child's level (INFO, set by dictConfig) holds inside the MultiHandler.
    assert messages(tmp_path / "t.db", "dc-ref") == ["two args", "three"]


def test_children_as_handler_configs_through_a_factory(
    tmp_path: Path, app_logger: logging.Logger
) -> None:
    _configure(
        {
            "multi": {
                "()": "workflow_traces.MultiHandler",
                "run_id": "dc-factory",
                "parent_run_id": "dc-parent",
                "extras": {"workflow_name": "dc-wf"},
                "handlers": [
                    {"type": "file", "path": str(tmp_path / "files"), "flush_interval": 0.5},
                    {"type": "sqlite", "path": str(tmp_path / "t.db"), "level": "ERROR"},
                ],
            }
        }
    )
    (multi,) = app_logger.handlers
    assert isinstance(multi.get_handler_by_type(WorkflowFileHandler), WorkflowFileHandler)
    sqlite = multi.get_handler_by_type(SQLiteHandler)
    assert sqlite is not None and sqlite.level == logging.ERROR
    _log_three(app_logger)
    multi.close()
    assert messages(tmp_path / "files", "dc-factory") == ["one", "two args", "three"]
    assert messages(tmp_path / "t.db", "dc-factory") == ["three"]
    from workflow_traces import open_store

    with open_store(tmp_path / "t.db") as store:
        run = store.get_run("dc-factory")
    assert run.parent_run_id == "dc-parent"
    assert run.records[0].workflow_name == "dc-wf"
    assert run.records[0].extras == {"order_id": 7}


def test_a_stdlib_child_handler_by_reference(tmp_path: Path, app_logger: logging.Logger) -> None:
    _configure(
        {
            "a_plain": {"class": "logging.FileHandler", "filename": str(tmp_path / "plain.log")},
            "b_sqlite": {
                "class": "workflow_traces.SQLiteHandler",
                "run_id": "dc-plain",
                "db_path": str(tmp_path / "t.db"),
            },
            "multi": {
                "class": "workflow_traces.MultiHandler",
                "run_id": "dc-plain",
                "handlers": ["cfg://handlers.a_plain", "cfg://handlers.b_sqlite"],
            },
        }
    )
    (multi,) = app_logger.handlers
    _log_three(app_logger)
    multi.close()
    assert (tmp_path / "plain.log").read_text().splitlines() == ["one", "two args", "three"]
    assert messages(tmp_path / "t.db", "dc-plain") == ["one", "two args", "three"]


def test_a_child_not_built_yet_is_a_clear_error(tmp_path: Path) -> None:
    # "z_sqlite" sorts after "multi": dictConfig has not built it when it builds "multi".
    with pytest.raises(ValueError, match="multi") as info:
        _configure(
            {
                "multi": {
                    "class": "workflow_traces.MultiHandler",
                    "run_id": "dc-late",
                    "handlers": ["cfg://handlers.z_sqlite"],
                },
                "z_sqlite": {
                    "class": "workflow_traces.SQLiteHandler",
                    "run_id": "dc-late",
                    "db_path": str(tmp_path / "t.db"),
                },
            }
        )
    cause = str(info.value.__cause__)
    assert "handlers[0]" in cause and "name order" in cause
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_a_bad_child_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multi") as info:
        _configure(
            {
                "multi": {
                    "()": "workflow_traces.MultiHandler",
                    "run_id": "dc-bad",
                    "handlers": [
                        {"type": "sqlite", "path": str(tmp_path / "t.db"), "buffer_size": 0}
                    ],
                }
            }
        )
    assert "handlers[0].buffer_size: must be > 0, got 0" in str(info.value.__cause__)
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_child_level_changed_after_adding_takes_effect(tmp_path: Path) -> None:
    file_handler = WorkflowFileHandler(run_id="lvl", base_path=tmp_path / "files")
    multi = MultiHandler("lvl", handlers=[file_handler])
    logger = logging.getLogger("dictconfig_level")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(multi)
    try:
        logger.info("kept")
        file_handler.setLevel(logging.ERROR)
        logger.info("filtered by the child's new level")
        logger.error("kept too")
    finally:
        logger.removeHandler(multi)
        multi.close()
    assert messages(tmp_path / "files", "lvl") == ["kept", "kept too"]
