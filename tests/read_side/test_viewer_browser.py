"""The web viewer in a real browser, over real traced runs: bars and statuses, clicking a
stage filters the logs, the level filter, a live run's records appearing, XSS strings shown as
text, and a screenshot of the run page kept with the test's outputs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import browser_page, viewer
from read_helpers import Places
from sample_runs import XSS_MESSAGE, XSS_STAGE, live_run, plain_run, sinks

from workflow_traces import open_store

pytestmark = pytest.mark.browser


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    files, db = tmp_path / "files", tmp_path / "traces.db"
    plain_run(sinks(files, db), lines=30)
    return files, db


def _rows(page: Any) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        ".tl-row",
        "rows => rows.map(r => ({kind: r.dataset.kind, name: r.dataset.name,"
        " status: r.dataset.status, attempt: r.dataset.attempt, run: r.dataset.run,"
        " bar: r.querySelector('.bar').getAttribute('class'),"
        " width: r.querySelector('.bar').getBoundingClientRect().width}))",
    )
    return rows


def _log_rows(page: Any) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        ".log-row",
        "rows => rows.map(r => ({id: r.dataset.id, level: r.dataset.level,"
        " job: r.dataset.job, stage: r.dataset.stage,"
        " msg: r.querySelector('.msg').textContent}))",
    )
    return rows


def _wait_logs(page: Any, expected: list[str]) -> None:
    page.wait_for_function(
        "ids => { const got = [...document.querySelectorAll('.log-row')].map(r => r.dataset.id);"
        " return got.length === ids.length && got.every((id, i) => id === ids[i]); }",
        arg=expected,
    )


@pytest.mark.parametrize("which", ["sqlite", "file"])
def test_the_run_page_shows_every_job_and_stage_and_filters_its_logs(
    written: tuple[Path, Path], tmp_path: Path, which: str
) -> None:
    files, db = written
    location = db if which == "sqlite" else files
    with open_store(location) as store:
        tree = store.run_tree("etl-1")
        every_log = [r.record_id for r in store.iter_records("etl-1", kind="log")]
        parse_logs = [r.record_id for r in store.iter_records("etl-1", kind="log", stage="parse")]
        errors = [r.record_id for r in store.iter_records("etl-1", kind="log", level="ERROR")]
        transform_logs = [
            r.record_id for r in store.iter_records("etl-1", kind="log", job="transform")
        ]
        validate_logs = [
            r.record_id
            for r in store.iter_records("etl-1", kind="log", job="transform", stage="validate")
        ]
    with viewer(location) as url, browser_page() as page:
        page.goto(url + "#/run/etl-1")
        page.wait_for_selector(".tl-row")
        _wait_logs(page, every_log)
        # Every node of the tree has its bar, in order, with its status and attempt.
        expected = [(n.kind, n.name, n.status or "", str(n.attempt)) for n in tree.walk()]
        rows = _rows(page)
        assert [(r["kind"], r["name"], r["status"], r["attempt"]) for r in rows] == expected
        for r in rows:
            assert f"s-{r['status']}" in r["bar"] and float(r["width"]) > 0
        statuses = {(r["name"], r["attempt"]): r["status"] for r in rows}
        assert statuses[("fetch", "1")] == "failed" and statuses[("fetch", "2")] == "succeeded"
        assert statuses[("validate", "1")] == "failed"
        assert statuses[("enrich", "1")] == "succeeded"  # the child run, where it ran
        assert [r["kind"] for r in rows].count("job") == 4  # extract, transform, load + lookup
        if which == "sqlite":
            page.screenshot(path=str(tmp_path / "run-page.png"), full_page=True)

        # Clicking a stage's bar filters the log pane to that stage.
        page.click(".tl-row[data-kind=stage][data-name=parse]")
        _wait_logs(page, parse_logs)
        assert {(r["job"], r["stage"]) for r in _log_rows(page)} == {("extract", "parse")}
        assert page.locator(".chip[data-filter=stage]").inner_text().startswith("stage: parse")
        # Clearing it, then the level filter.
        page.click(".chip[data-filter=job] button")
        _wait_logs(page, every_log)
        # The job and stage choices filter the same way.
        page.select_option("#f-job", "transform")
        _wait_logs(page, transform_logs)
        page.select_option("#f-stage", "validate")
        _wait_logs(page, validate_logs)
        page.select_option("#f-job", "")
        _wait_logs(page, every_log)
        page.select_option("#f-level", "ERROR")
        _wait_logs(page, errors)
        assert {r["level"] for r in _log_rows(page)} <= {"ERROR", "CRITICAL"}
        assert page.locator(".log-row .tb").first.inner_text().startswith("Traceback")
        assert page.errors == []  # type: ignore[attr-defined]


def test_xss_strings_render_as_text(written: tuple[Path, Path]) -> None:
    _, db = written
    with viewer(db) as url, browser_page() as page:
        page.goto(url + "#/run/etl-1")
        page.wait_for_selector(".log-row")
        page.wait_for_function("() => document.querySelectorAll('.log-row').length > 5")
        messages = [r["msg"] for r in _log_rows(page)]
        assert XSS_MESSAGE in messages
        assert page.evaluate("() => window.__xss") is None  # no script ran, no onerror fired
        assert page.locator("#logs script, #logs img, #timeline img, #timeline script").count() == 0
        names = [r["name"] for r in _rows(page)]
        assert XSS_STAGE in names
        # The terminal attack string shows its control characters as escapes.
        assert any("\\x1b[31mALERT" in m and "\\u202eevil" in m for m in messages)
        page.goto(url + "#/")
        page.wait_for_selector(".run-row")
        assert page.evaluate("() => window.__xss") is None
        assert page.errors == []  # type: ignore[attr-defined]


def test_the_runs_page_lists_filters_and_searches(written: tuple[Path, Path]) -> None:
    files, db = written
    extras = sinks(files, db)
    from workflow_traces.integrations.plain import workflow

    for i in range(3):
        try:
            with workflow("report", run_id=f"report-{i}", **extras) as t:
                t.info("reporting")
                if i == 1:
                    raise RuntimeError("report broke")
        except RuntimeError:
            pass
    with viewer(db) as url, browser_page() as page:
        page.goto(url)
        page.wait_for_selector(".run-row")

        def listed() -> dict[str, list[str]]:
            rows: list[list[str]] = page.eval_on_selector_all(
                ".run-row",
                "rows => rows.map(r => [r.dataset.runId,"
                " r.querySelector('.badge').dataset.status,"
                " r.children[5].textContent])",
            )
            return {r[0]: r[1:] for r in rows}

        runs = listed()
        assert set(runs) == {"etl-1", "etl-1-child", "report-0", "report-1", "report-2"}
        assert runs["etl-1"] == ["succeeded", "1"] and runs["report-1"] == ["failed", "0"]
        assert page.eval_on_selector_all("#f-workflow option", "os => os.map(o => o.value)") == [
            "",
            "enrich",
            "etl",
            "report",
        ]
        page.select_option("#f-workflow", "report")
        page.wait_for_function("() => document.querySelectorAll('.run-row').length === 3")
        assert set(listed()) == {"report-0", "report-1", "report-2"}
        page.select_option("#f-workflow", "")
        page.wait_for_function("() => document.querySelectorAll('.run-row').length === 5")
        page.select_option("#f-status", "failed")
        page.wait_for_function("() => document.querySelectorAll('.run-row').length === 1")
        assert set(listed()) == {"report-1"}
        page.select_option("#f-status", "")
        page.fill("#f-search", "etl")
        page.wait_for_function("() => document.querySelectorAll('.run-row').length === 2")
        assert set(listed()) == {"etl-1", "etl-1-child"}
        page.check("#f-roots")
        page.wait_for_function("() => document.querySelectorAll('.run-row').length === 1")
        page.click(".run-row a")
        page.wait_for_selector(".tl-row")
        assert "#/run/etl-1" in page.url
        assert page.errors == []  # type: ignore[attr-defined]


def test_a_run_still_being_written_updates_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files, db = tmp_path / "files", tmp_path / "traces.db"
    go, done = threading.Event(), threading.Event()
    writer = threading.Thread(target=live_run, args=(sinks(files, db), "live-1", go, done))
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not db.exists():
                time.sleep(0.05)
                continue
            with open_store(db) as store:
                if any(r.message == "tick 0" for r in store.iter_records("live-1")):
                    break
            time.sleep(0.05)
        with viewer(db) as url, browser_page() as page:
            page.goto(url + "#/run/live-1")
            page.wait_for_selector(".log-row")
            assert page.locator("#live").is_visible()
            assert (
                page.locator(".tl-row[data-kind=stage][data-name=tick]").get_attribute(
                    "data-status"
                )
                == "unfinished"
            )
            grown = page.locator(".tl-row[data-name=tick] .tl-dur").inner_text()
            for n in (1, 2):
                go.set()
                # The promise: a new record shows within 3 s.
                page.wait_for_function(
                    "text => [...document.querySelectorAll('.log-row .msg')]"
                    ".some(m => m.textContent === text)",
                    arg=f"tick {n}",
                    timeout=3000,
                )
            # The unfinished stage's bar grows: its length is measured against the clock.
            page.wait_for_function(
                "before => document.querySelector('.tl-row[data-name=tick] .tl-dur')"
                ".textContent !== before",
                arg=grown,
            )
            done.set()
            writer.join(10)
            # The run ends: the page says so, and nothing is left unfinished.
            page.wait_for_selector(".runhead .badge[data-status=succeeded]", timeout=10_000)
            page.wait_for_function(
                "() => !document.querySelector('.tl-row[data-status=unfinished]')", timeout=10_000
            )
            assert page.locator("#live").is_hidden()
            ticks = [r["msg"] for r in _log_rows(page) if r["msg"].startswith("tick")]
            assert ticks == ["tick 0", "tick 1", "tick 2"]
            assert page.errors == []  # type: ignore[attr-defined]
    finally:
        done.set()
        writer.join(10)


@pytest.mark.network
def test_the_viewer_reads_elasticsearch_too(places: Places) -> None:
    plain_run(places.extras, lines=30)
    location = places.locations["es"]
    with open_store(location) as store:
        tree = store.run_tree("etl-1")
        every_log = [r.record_id for r in store.iter_records("etl-1", kind="log")]
        fetch_logs = [r.record_id for r in store.iter_records("etl-1", kind="log", stage="fetch")]
    with viewer(location) as url, browser_page() as page:
        page.goto(url + "#/run/etl-1")
        page.wait_for_selector(".tl-row")
        _wait_logs(page, every_log)
        rows = _rows(page)
        assert [(r["kind"], r["name"], r["status"], r["attempt"]) for r in rows] == [
            (n.kind, n.name, n.status or "", str(n.attempt)) for n in tree.walk()
        ]
        page.click(".tl-row[data-kind=stage][data-name=fetch][data-attempt='2']")
        _wait_logs(page, fetch_logs)
        page.goto(url)
        page.wait_for_selector(".run-row")
        assert page.locator(".run-row").count() == 2
        assert page.errors == []  # type: ignore[attr-defined]


def test_a_big_run_opens_on_its_first_page_and_scrolls_by_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "traces.db"
    plain_run(sinks(tmp_path / "files", db), run_id="big-1", lines=3000)
    with open_store(db) as store:
        every = [r.record_id for r in store.iter_records("big-1", kind="log")]
    assert len(every) > 3000
    with viewer(db) as url, browser_page() as page:
        page.goto(url + "#/run/big-1")
        page.wait_for_selector(".log-row")
        first = [r["id"] for r in _log_rows(page)]
        assert first == every[: len(first)] and len(first) < len(every)  # one page, not all
        assert page.locator("#logs-count").inner_text().endswith("+ records")
        for _ in range(40):  # scroll the pane to its end, page after page
            page.eval_on_selector("#logs", "pane => { pane.scrollTop = pane.scrollHeight; }")
            page.wait_for_timeout(100)
            if page.locator("#logs .log-row").count() == len(every):
                break
        _wait_logs(page, every)  # every record once, in order
        assert page.errors == []  # type: ignore[attr-defined]
