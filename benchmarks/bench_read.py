"""The read side: a 1,000,000-record run streamed through ``runs show --logs`` to /dev/null.

``run(n)`` writes one run of ``n`` log records (plus its lifecycle events) through the SQLite
and file sinks, then runs ``workflow-traces runs show LOCATION RUN --logs`` with stdout on
/dev/null, once per store, and returns ``[(label, records/s, memory growth in KiB)]``. The
rate is records over the command's wall time (start-up included); the growth is the command's
peak RSS (VmHWM, counted from its exec) minus that of the same command over a 10-record run
(what importing and starting costs). Targets (issue 13): growth < 50 MiB, and >= 200,000
records/s from SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workflow_traces.integrations.plain import job, stage, workflow

# The command, then its peak RSS (VmHWM: this process's own, since exec) on stderr.
_RUNNER = (
    "import sys\n"
    "from workflow_traces.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "sys.stderr.write(hwm.split()[1] + '\\n')\n"
    "sys.exit(code)\n"
)
_COMMAND = (sys.executable, "-c", _RUNNER, "runs", "show")
N = int(os.environ.get("BENCH_READ_N", "1000000"))


def _write(folder: Path, run_id: str, n: int) -> None:
    extras = {
        "trace_type": "multi",
        "handlers": [
            {
                "type": "sqlite",
                "path": str(folder / "traces.db"),
                "buffer_size": 5000,
                "queue_size": 2_000_000,
            },
            {
                "type": "file",
                "path": str(folder / "files"),
                "buffer_size": 1 << 20,
                "queue_size": 2_000_000,
            },
        ],
        "fail_silently": False,
    }
    with workflow("bench-read", run_id=run_id, **extras), job("load"), stage("rows") as t:
        info = t.info
        for i in range(n):
            info(f"row {i} loaded into the warehouse")


def _show(location: Path, run_id: str) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of ``runs show LOCATION RUN --logs > /dev/null``."""
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(
            [*_COMMAND, str(location), run_id, "--logs"],
            stdout=devnull,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"runs show exited {proc.returncode}: {err}")
    return seconds, int(err.split()[-1])


def _open_in_viewer(location: Path, run_id: str) -> float:
    """Seconds the viewer's server takes to answer what the run page asks first: the run (its
    summary and tree) and the first page of its logs, over HTTP on 127.0.0.1."""
    import threading
    import urllib.request

    from workflow_traces import open_store
    from workflow_traces.viewer.server import ViewerServer

    with open_store(location) as store:
        server = ViewerServer(store, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            started = time.perf_counter()
            for path in (f"api/runs/{run_id}", f"api/runs/{run_id}/records?limit=500"):
                with urllib.request.urlopen(server.url + path, timeout=120) as response:
                    response.read()
            return time.perf_counter() - started
        finally:
            server.shutdown()
            server.server_close()


def run(n: int = N) -> list[tuple[str, float, int]]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _write(folder, "small", 10)
        began = time.perf_counter()
        _write(folder, "big", n)
        print(f"  (wrote {n:,} records in {time.perf_counter() - began:.1f}s)")
        out = []
        for label, location in (
            ("SQLite", folder / "traces.db"),
            ("file folder", folder / "files"),
        ):
            _, base_rss = _show(location, "small")
            seconds, rss = _show(location, "big")
            out.append((f"runs show --logs > /dev/null, {label}", n / seconds, rss - base_rss))
        for label, location in (
            ("SQLite", folder / "traces.db"),
            ("file folder", folder / "files"),
        ):
            opened.append((f"viewer opens the run, {label}", _open_in_viewer(location, "big")))
        return out


#: (label, seconds) of the viewer rows, filled by run().
opened: list[tuple[str, float]] = []


def main() -> None:
    print(f"read side: one run of {N:,} records through `runs show --logs` to /dev/null\n")
    print(f"  {'':52} {'records/s':>10} {'memory growth':>14}  targets")
    for label, rate, growth in run(N):
        ok_rate = rate >= 200_000 if "SQLite" in label else True
        ok_mem = growth < 50 * 1024
        verdict = "ok" if ok_rate and ok_mem else "MISSED"
        target = ">= 200,000/s, < 50 MiB" if "SQLite" in label else "< 50 MiB"
        print(f"  {label:52} {rate:10,.0f} {growth / 1024:11.1f} MiB  {target} {verdict}")
    head = "the run page's first requests (run + 500 records)"
    print(f"\n  {head:52} {'seconds':>10}  target")
    for label, seconds in opened:
        verdict = "ok" if seconds < 2 else "MISSED"
        print(f"  {label:52} {seconds:10.2f}  < 2 s {verdict}")


if __name__ == "__main__":
    main()
