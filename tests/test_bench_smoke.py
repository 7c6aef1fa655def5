"""Every benchmark of ``make bench`` runs, with tiny sizes, and prints its figures.

Benchmarks are run by hand, rarely, so they rot unseen: ``bench.alarms``
stopped at an option ``bench.ingest`` had grown, ``bench.live`` at a metrics
endpoint that had come to want a token. Here each runs as ``make bench`` runs it
(``python -m bench.X`` from a directory of its own), on sizes that take seconds,
and must print its figure and what that figure is compared with. The
benchmarks' list is read from the Makefile, so a new one cannot be left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Per benchmark: its tiny sizes, and what its output must show (regexes,
#: one a line): the figure, and its baseline or ratio.
TINY: dict[str, tuple[list[str], list[str]]] = {
    "bench.provision": (
        ["--devices", "5"],
        [
            r"^dynsec\s+[\d.]+ devices/s",
            r"^moydom\s+[\d.]+ devices/s",
            r"^ratio moydom/dynsec: [\d.]+",
        ],
    ),
    "bench.ingest": (
        ["--messages", "300", "--publishers", "1"],
        [
            r"^raw mosquitto_sub\s+\d+",
            r"^moydom 1 worker: [\d,]+ msg/s, [\d.]+ of raw",
            r"^moydom 2 workers: [\d,]+ msg/s, [\d.]+ of raw",
        ],
    ),
    "bench.alarms": (
        ["--trips", "3", "--homes", "2", "--background-devices", "1", "--background-rate", "50"],
        [
            r"^idle\s+3(\s+[\d.]+){5}\s+-\s",  # the baseline: no other traffic
            r"^background\s+3(\s+[\d.]+){5}\s+50\b",
        ],
    ),
    "bench.recorder": (
        ["--runs", "1", "--seconds", "1", "--warm-up", "2.5", "--size", "160x120"],
        [
            r"^ffmpeg copy\s+[\d.]+",
            r"^moydom record\s+[\d.]+",
            r"^recording: moydom / ffmpeg copy = [\d.]+",
            r"^moydom motion every frame: .* ratio [\d.]+",
        ],
    ),
    "bench.live": (
        ["--seconds", "1", "--settle", "0.5", "--steps", "1,2", "--size", "160x120"],
        [
            r"^\s+2\s+[\d.]+%\s+1\s+[\d.]+ fps",
            r"^per added viewer 1→2: +[\d.]+% of a core",
            r"^ffmpeg -c copy \(segments\): .* live/ffmpeg = [\d.]+",
            r"^upstreams after the last viewer left \(\+ idle\): 0$",
        ],
    ),
}
#: Not worth ``make test-fast``'s time (each starts gateways, brokers or cameras).
SLOW = {"bench.ingest", "bench.alarms", "bench.recorder", "bench.live"}


def makefile_benchmarks() -> list[str]:
    """The modules the Makefile's ``bench`` target runs, in its order."""
    text = (ROOT / "Makefile").read_text()
    target = re.search(r"^bench:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert target, "the Makefile has no bench target"
    return re.findall(r"-m (bench\.[\w.]+)", target.group(1))


def test_every_benchmark_of_make_bench_has_a_smoke_run() -> None:
    assert makefile_benchmarks() == list(TINY)


@pytest.mark.parametrize(
    "module",
    [pytest.param(m, marks=[pytest.mark.slow] if m in SLOW else []) for m in TINY],
)
def test_the_benchmark_runs_and_prints_its_figures(module: str, tmp_path: Path) -> None:
    flags, expected = TINY[module]
    done = subprocess.run(
        [sys.executable, "-m", module, *flags],
        cwd=tmp_path,  # its cache (var/bench) and temporary files stay here
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    missing = [p for p in expected if not re.search(p, done.stdout, re.MULTILINE)]
    assert not missing, f"{module} did not print {missing}:\n{done.stdout[-4000:]}"
