"""A Prefect flow with a subflow, read back: the subflow has a status of its own (from its job
events), sits in its parent's tree where it ran, and the viewer shows it so in a real browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from prefect import flow, get_run_logger, task
from prefect_helpers import PREFECT_WARNING_FILTERS, flow_run_id, prefect_child_flow_runs
from workflow_traces.integrations.prefect import flush, traced

from workflow_traces import open_store

sys.path.insert(0, str(Path(__file__).parents[1] / "read_side"))

from browser_helpers import browser_page, viewer

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.browser,
    *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS),
]


@task
@traced
def count_rows(n: int) -> int:
    get_run_logger().info("counting %d rows", n)
    return n


@flow(name="enrich-sub")
@traced
def enrich() -> int:
    get_run_logger().warning("enriching <b>bold</b> rows")
    return count_rows(3)


@flow(name="nightly")
@traced
def nightly() -> int:
    get_run_logger().info("nightly starts")
    return count_rows(2) + enrich()


def test_a_subflow_has_its_status_and_its_place_in_the_viewer(tmp_path: Path) -> None:
    state = nightly(return_state=True)
    root_id = flow_run_id(state)
    (child,) = prefect_child_flow_runs(root_id)
    flush(30)
    db = tmp_path / "traces.db"
    with open_store(db) as store:
        sub = store.get_summary(str(child.id))
        assert sub.parent_run_id == root_id
        assert sub.status == "succeeded" and sub.duration is not None  # from its job events
        tree = store.run_tree(root_id)
        runs = [n for n in tree.walk() if n.kind == "run"]
        assert [n.run_id for n in runs] == [str(child.id)]
        assert runs[0].status == "succeeded"
        # Under the flow's own job, the one running when the subflow started.
        holder = next(n for n in tree.walk() if runs[0] in n.children)
        assert (holder.kind, holder.name) == ("job", "nightly")
        assert runs[0].find("count_rows", "stage") is not None
    with viewer(db) as url, browser_page() as page:
        page.goto(url + f"#/run/{root_id}")
        page.wait_for_selector(".tl-row[data-kind=run]")
        row = page.locator(".tl-row[data-kind=run]")
        assert row.get_attribute("data-status") == "succeeded"
        assert page.locator(".tl-row[data-kind=stage][data-name=count_rows]").count() == 2
        page.screenshot(path=str(tmp_path / "prefect-run-page.png"), full_page=True)
        row.click()
        page.wait_for_selector(".runhead .badge[data-status=succeeded]")
        assert str(child.id) in page.url
        page.wait_for_function(
            "() => [...document.querySelectorAll('.log-row .msg')]"
            ".some(m => m.textContent === 'enriching <b>bold</b> rows')"
        )
        assert page.locator("#logs b").count() == 0
        assert page.errors == []  # type: ignore[attr-defined]
