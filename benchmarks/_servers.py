"""Local services for the network benchmarks, each in a subprocess of its own: a real service
never shares the caller's process (nor its GIL), and on this machine the two processes can use
the two cores.

Both run lean by default: the LocalReceiver counts the records of each request by their
``record_id`` key instead of decoding them (``--lean``); the LocalElasticsearch keeps each
document as received instead of checking it against the mapping (``--no-check-documents``).
Each still reads every byte, answers like the service (per-item statuses for a bulk request)
and counts what it accepted, which the benchmarks compare with what they sent.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson

__all__ = ["REPEAT", "es_server", "median", "rest_receiver"]

#: Each figure is the median of this many runs (the machine is shared and noisy).
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))


def median(values: list[float]) -> float:
    return float(statistics.median(values))


@contextmanager
def _subprocess(code: str, args: list[str]) -> Iterator[str]:
    """Run ``code`` in a new interpreter; yield the URL it prints on its first line."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the local server did not start (exit code {proc.poll()})")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _get_json(url: str, data: bytes | None = None) -> dict[str, object]:
    with urllib.request.urlopen(url, data=data, timeout=30) as resp:
        answer: dict[str, object] = orjson.loads(resp.read())
        return answer


@contextmanager
def rest_receiver(service: str, lean: bool = True) -> Iterator[tuple[str, Callable[[], int]]]:
    """A LocalReceiver for ``service``: (its base URL, a function giving the number of records
    it accepted so far)."""
    code = "from local_services.receiver import main; main()"
    args = ["--service", service, "--port", "0"] + (["--lean"] if lean else [])
    with _subprocess(code, args) as url:

        def accepted() -> int:
            return int(str(_get_json(f"{url}/_stats")["records"]))

        yield url, accepted


@contextmanager
def es_server(check_documents: bool = False) -> Iterator[tuple[str, Callable[[str], int]]]:
    """A LocalElasticsearch: (its URL, a function giving the number of documents an index
    holds)."""
    code = "from local_services.elasticsearch import main; main()"
    args = ["--port", "0"] + ([] if check_documents else ["--no-check-documents"])
    with _subprocess(code, args) as url:

        def count(index: str) -> int:
            _get_json(f"{url}/{index}/_refresh", data=b"")
            return int(str(_get_json(f"{url}/{index}/_count")["count"]))

        yield url, count
