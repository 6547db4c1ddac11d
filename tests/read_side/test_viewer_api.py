"""The viewer's server over real HTTP on 127.0.0.1: its JSON, its headers, its refusals, and
the `ui` command's address rules."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sample_runs import XSS_MESSAGE, plain_run, sinks

from workflow_traces import open_store
from workflow_traces.viewer.server import ViewerServer, is_loopback_host


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ViewerServer]:
    monkeypatch.chdir(tmp_path)
    plain_run(sinks(tmp_path / "files", tmp_path / "traces.db"), lines=1200)
    store = open_store(tmp_path / "traces.db")
    srv = ViewerServer(store, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    store.close()


def get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get_json(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, body
    return json.loads(body)


def test_the_page_and_its_files_are_served_with_a_strict_policy(server: ViewerServer) -> None:
    for path, kind in (
        ("", "text/html"),
        ("static/app.js", "text/javascript"),
        ("static/style.css", "text/css"),
    ):
        status, headers, body = get(server.url + path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert get(server.url + "static/../server.py")[0] == 404
    assert get(server.url + "static/nothing.js")[0] == 404


def test_a_request_naming_another_host_is_refused(server: ViewerServer) -> None:
    assert get(server.url, host="evil.example:80")[0] == 421
    assert get(server.url + "api/runs", host=f"attacker.test:{server.server_address[1]}")[0] == 421
    assert get(server.url, host=f"localhost:{server.server_address[1]}")[0] == 200


def test_runs_run_and_records_pages_by_cursor(server: ViewerServer) -> None:
    runs = get_json(server.url + "api/runs")
    assert {r["run_id"]: r["child_count"] for r in runs["runs"]} == {"etl-1": 1, "etl-1-child": 0}
    assert runs["workflows"] == ["enrich", "etl"]
    assert [
        r["run_id"] for r in get_json(server.url + "api/runs?status=succeeded&q=child")["runs"]
    ] == ["etl-1-child"]
    assert get_json(server.url + "api/runs?limit=1")["more"] is True
    run = get_json(server.url + "api/runs/etl-1")
    assert run["run"]["status"] == "succeeded" and run["tree"]["children"][0]["name"] == "extract"
    with open_store(server.store.path) as store:  # type: ignore[attr-defined]
        expected = [r.record_id for r in store.iter_records("etl-1", kind="log")]
    got: list[str] = []
    cursor = ""
    while True:
        page = get_json(server.url + f"api/runs/etl-1/records?limit=500&after={cursor}")
        got.extend(r["record_id"] for r in page["records"])
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert got == expected and len(got) > 1000
    xss = get_json(server.url + "api/runs/etl-1/records?text=%3Cscript%3E")
    assert [r["message"] for r in xss["records"]] == [XSS_MESSAGE]


def test_bad_requests_are_clear_errors(server: ViewerServer) -> None:
    status, _, body = get(server.url + "api/runs/nope")
    assert status == 404 and "no records of run 'nope'" in json.loads(body)["error"]
    status, _, body = get(server.url + "api/runs/etl-1/records?level=LOUD")
    assert status == 400 and "level: expected one of" in json.loads(body)["error"]
    status, _, body = get(server.url + "api/runs?limit=many")
    assert status == 400 and "limit: expected a whole number" in json.loads(body)["error"]
    status, _, body = get(server.url + "api/runs?status=DONE")
    assert status == 400 and "status: expected one of" in json.loads(body)["error"]


def test_ui_binds_loopback_unless_told_and_warns_then(tmp_path: Path) -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost")
    assert is_loopback_host("::1") and not is_loopback_host("0.0.0.0")
    plain_run(sinks(tmp_path / "files", tmp_path / "traces.db"))
    for extra, warned in (([], False), (["--host", "0.0.0.0"], True)):
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workflow_traces.cli.main",
                "ui",
                str(tmp_path / "traces.db"),
                "--port",
                "0",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("workflow-traces viewer: http://127.0.0.1:"), line
            assert "(sqlite:" in line
            url = line.split()[2]
            assert get(url)[0] == 200
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert ("warning: serving on 0.0.0.0: the logs become visible" in err) is warned, err
    missing = subprocess.run(
        [sys.executable, "-m", "workflow_traces.cli.main", "ui", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_browser_tests_fail_on_ci_and_skip_elsewhere_without_chromium(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import browser_helpers

    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="browser tests need a browser on CI"):
        browser_helpers.need_browser()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no Chromium at"):
        browser_helpers.need_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser_helpers.need_browser()
