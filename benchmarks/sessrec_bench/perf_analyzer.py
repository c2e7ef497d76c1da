"""Triton's C++ load generator ``perf_analyzer`` for the served ensemble: find it, feed it sessions, read its CSV.

``perf_analyzer`` spends far less CPU per request than a Python client (docs/history/serving.md), so on a
small machine it leaves more of the CPU to the server it measures. It is found on
``PATH`` (the GPU container has it) or in the project's side venv ``.venv-perf`` (``make perf-analyzer``: the
``tritonclient==2.51.0`` wheel ships the binary). Each concurrency level is one run of the binary sending
exactly ``requests`` one-session requests (``--request-count``), bounded by a timeout. Throughput is counted
from the per-request timestamps of its profile export (first send to last answer): in this mode its own
"Inferences/Second" divides by a window that ends on its next once-a-second poll, which reads up to a second
long (docs/history/serving.md).

>>> levels = run_perf_analyzer(server.http_url, sessions, [1, 4], requests=2000)   # doctest: +SKIP
>>> levels[1].throughput, levels[1].percentile(99)                                  # doctest: +SKIP
(1980.4, 3.42)
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sessrec_course.paths import project_root, write_file_atomically
from sessrec_course.serving.client import pad_raw_sessions
from sessrec_course.serving.repository import ENSEMBLE, INPUT_NAME

log = logging.getLogger(__name__)

PERF_VENV = ".venv-perf"
INSTALL_HINT = ("install it with `make perf-analyzer` (the tritonclient==2.51.0 wheel in the side venv "
                f"{PERF_VENV}), put it on PATH, or set $PERF_ANALYZER")
PERCENTILES = (50, 90, 95, 99)
# The CSV's latency parts (µs); they add up to the average client latency.
LATENCY_PARTS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
                 "Server Compute Infer", "Server Compute Output", "Client Recv")


class PerfAnalyzerError(RuntimeError):
    """perf_analyzer failed, timed out, or wrote output that cannot be read."""


@dataclass
class PerfAnalyzerLevel:
    """One concurrency level measured by perf_analyzer (latencies in ms).

    Same reading interface as :class:`sessrec_bench.loadtest.LoadLevel` (``throughput``, ``percentile(q)``, ``mean_ms``,
    ``latencies_ms``), so ``LoadTestResult.summary()`` and the plots take either. perf_analyzer stops at the
    first failed request, so a level that comes back has ``errors == 0``. The percentiles and the mean are
    perf_analyzer's; ``seconds`` runs from the first send to the last answer; ``window_throughput_per_s`` is
    perf_analyzer's own rate (reads low, see the module docstring); ``client_cpu_s`` is the CPU time of the
    perf_analyzer process and ``wall_s`` how long it ran (start-up and writing its files included).
    """

    concurrency: int
    requests: int
    seconds: float
    percentiles_ms: dict[int, float]
    mean_latency_ms: float
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    window_throughput_per_s: float = float("nan")
    client_cpu_s: float = 0.0
    wall_s: float = 0.0
    errors: int = 0
    first_error: str | None = None

    @property
    def throughput(self) -> float:
        """Answered requests (= inferences, one session each) per second, first send to last answer."""
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_ms(self) -> float:
        """Average client latency in ms (the sum of perf_analyzer's latency parts)."""
        return self.mean_latency_ms

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` in ms: perf_analyzer's for 50/90/95/99, else from ``latencies_ms`` or NaN."""
        if int(q) == q and int(q) in self.percentiles_ms:
            return self.percentiles_ms[int(q)]
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")


def find_perf_analyzer() -> Path | None:
    """Return the ``perf_analyzer`` binary: ``$PERF_ANALYZER``, ``PATH``, or ``.venv-perf/bin`` of the repo."""
    candidates = [os.environ.get("PERF_ANALYZER"), shutil.which("perf_analyzer"),
                  project_root() / PERF_VENV / "bin" / "perf_analyzer"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def require_perf_analyzer() -> Path:
    """Return :func:`find_perf_analyzer` or raise FileNotFoundError saying how to install it."""
    binary = find_perf_analyzer()
    if binary is None:
        raise FileNotFoundError(f"no perf_analyzer binary found: {INSTALL_HINT}")
    return binary


def perf_analyzer_environment(binary: Path) -> dict[str, str]:
    """Return the environment to run ``binary`` with: its venv's ``libs/`` and CUDA runtime on LD_LIBRARY_PATH.

    The tritonclient wheel's binary needs ``libb64.so.0d`` (linked into ``<venv>/libs`` by ``make
    perf-analyzer``) and ``libcudart.so.12`` (the nvidia-cuda-runtime-cu12 wheel), even on a CPU machine. A
    binary outside such a venv (the GPU container's) gets the environment unchanged.
    """
    venv = Path(binary).resolve().parent.parent
    dirs = [venv / "libs", *map(Path, sorted(glob.glob(str(venv / "lib/python3*/site-packages/nvidia/cuda_runtime/lib"))))]
    dirs = [str(d) for d in dirs if d.is_dir()]
    env = dict(os.environ)
    if dirs:
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*dirs, *filter(None, [env.get("LD_LIBRARY_PATH")])])
    return env


def check_perf_analyzer(binary: Path | None = None) -> str:
    """Run ``perf_analyzer --version`` and return its version line; raise PerfAnalyzerError when it cannot run."""
    binary = binary or require_perf_analyzer()
    done = subprocess.run([str(binary), "--version"], env=perf_analyzer_environment(binary), capture_output=True,
                          text=True, timeout=30, check=False)
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise PerfAnalyzerError(f"{binary} --version exited with code {done.returncode}: {text[-800:]}\n"
                                f"Re-{INSTALL_HINT}")
    return text.splitlines()[-1] if text else f"{binary} (no version printed)"


def write_input_data(sessions: Sequence[Sequence[int]], path: str | Path) -> Path:
    """Write raw sessions as perf_analyzer ``--input-data`` JSON (one batch-1 request per session).

    Each entry is ``{"item_id_list": {"content": [...], "shape": [L]}}``: the session right-padded with -1 as
    the serving contract wants (an empty session is ``[-1]``), the shape without the batch dimension. The file
    is written to a temporary name and renamed, so a reader never sees half of it.
    """
    if not len(sessions):
        raise ValueError("perf_analyzer needs at least one raw session")
    data = []
    for session in sessions:
        row = pad_raw_sessions([session])[0]
        data.append({INPUT_NAME: {"content": row.tolist(), "shape": [int(row.size)]}})
    path = Path(path)
    text = json.dumps({"data": data})
    return write_file_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _number(row: dict[str, str], column: str, source: str) -> float:
    try:
        return float(row[column])
    except KeyError:
        raise PerfAnalyzerError(f"{source}: no column {column!r} (columns: {', '.join(row)})") from None
    except ValueError:
        raise PerfAnalyzerError(f"{source}: column {column!r} holds {row[column]!r}, expected a number") from None


def parse_csv(path: str | Path) -> list[dict[str, float]]:
    """Read perf_analyzer's ``-f`` CSV: one dict per row with concurrency, throughput and latencies in ms.

    Keys: ``concurrency``, ``throughput_per_s``, ``p50_ms`` ``p90_ms`` ``p95_ms`` ``p99_ms`` and ``mean_ms``
    (the sum of the latency parts; NaN when a part is missing). perf_analyzer writes latencies in µs.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise PerfAnalyzerError(f"{path}: no measurement rows (an empty or header-only perf_analyzer CSV)")
    parsed = []
    for index, row in enumerate(rows, start=2):
        source = f"{path}, line {index}"
        entry = {"concurrency": _number(row, "Concurrency", source),
                 "throughput_per_s": _number(row, "Inferences/Second", source)}
        for q in PERCENTILES:
            entry[f"p{q}_ms"] = _number(row, f"p{q} latency", source) / 1e3
        parts = [row.get(part) for part in LATENCY_PARTS]
        entry["mean_ms"] = (sum(_number(row, p, source) for p in LATENCY_PARTS) / 1e3
                            if all(parts) else float("nan"))
        parsed.append(entry)
    return parsed


def read_profile_export(path: str | Path) -> tuple[np.ndarray, float]:
    """Return per-request latencies (ms) and the span in s from the first send to the last answer.

    Reads perf_analyzer's ``--profile-export-file`` JSON (timestamps in ns); a request without an answer is
    left out of the latencies, and the span is 0 when nothing was answered.
    """
    path = Path(path)
    try:
        experiments = json.loads(path.read_text(encoding="utf-8"))["experiments"]
        answered = [(r["timestamp"], r["response_timestamps"]) for e in experiments for r in e["requests"]
                    if r.get("response_timestamps")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PerfAnalyzerError(f"{path}: not a readable perf_analyzer profile export ({exc})") from exc
    if not answered:
        return np.empty(0), 0.0
    latencies = np.asarray([(answers[0] - sent) / 1e6 for sent, answers in answered])
    span = (max(answers[-1] for _, answers in answered) - min(sent for sent, _ in answered)) / 1e9
    return latencies, span


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no output)"
    with path.open(encoding="utf-8", errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip()


def _run_bounded(command: list[str], env: dict[str, str], log_path: Path, timeout_s: float) -> tuple[int, float]:
    """Run ``command`` (output to ``log_path``) for at most ``timeout_s``; return (exit code, its CPU seconds).

    The CPU time is the child's own (``wait4`` rusage). On timeout or interrupt its process group is killed.
    """
    with log_path.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    status = usage = None
    try:
        while status is None:
            pid, raw_status, raw_usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                status, usage = raw_status, raw_usage
            elif time.monotonic() > deadline:
                raise TimeoutError
            else:
                time.sleep(0.02)
    except BaseException:
        if status is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended meanwhile
                pass
            _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        raise
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def run_perf_analyzer(url: str, sessions: Sequence[Sequence[int]], concurrencies: Sequence[int] = (1, 2, 4, 8),
                      requests: int = 1000, protocol: str = "http", model: str = ENSEMBLE,
                      timeout_s: float = 120.0, binary: Path | None = None,
                      extra_args: Sequence[str] = ()) -> list[PerfAnalyzerLevel]:
    """Send exactly ``requests`` one-session requests at each concurrency with perf_analyzer; return the levels.

    ``url`` is ``host:port`` of the ``protocol`` ("http" or "grpc") endpoint; ``sessions`` are raw sessions,
    cycled through. Each level is one perf_analyzer run, killed after ``timeout_s`` seconds; every request's
    latency comes back in ``latencies_ms`` (from its ``--profile-export-file``) for histograms.
    Raises :class:`PerfAnalyzerError` naming the binary with the last lines of its output when a run fails.
    """
    if protocol not in ("http", "grpc"):
        raise ValueError(f"perf_analyzer speaks 'http' or 'grpc', got {protocol!r}")
    if requests < 1 or not concurrencies or min(concurrencies) < 1:
        raise ValueError(f"need requests >= 1 and concurrencies >= 1, got {requests} and {list(concurrencies)}")
    binary = binary or require_perf_analyzer()
    env = perf_analyzer_environment(binary)
    levels = []
    with tempfile.TemporaryDirectory(prefix="sessrec-perf-") as tmp:
        work = Path(tmp)
        input_path = write_input_data(sessions, work / "input.json")
        for concurrency in concurrencies:
            csv_path, log_path, export = (work / f"c{concurrency}{ext}" for ext in (".csv", ".log", ".json"))
            for stale in (csv_path, export):  # perf_analyzer refuses an existing export file
                stale.unlink(missing_ok=True)
            command = [str(binary), "-m", model, "-u", url, "-i", protocol, "--input-data", str(input_path),
                       "--concurrency-range", str(concurrency), "--request-count", str(requests),
                       "-f", str(csv_path), "--profile-export-file", str(export), *extra_args]
            began = time.perf_counter()
            try:
                code, cpu = _run_bounded(command, env, log_path, timeout_s)
            except TimeoutError:
                raise PerfAnalyzerError(f"{binary} did not finish c={concurrency} ({requests} requests) within "
                                        f"{timeout_s:.0f} s and was killed. Last output:\n{_tail(log_path)}") from None
            wall = time.perf_counter() - began
            if code != 0 or not csv_path.exists() or not export.exists():
                raise PerfAnalyzerError(f"{binary} exited with code {code} at c={concurrency} against {url} "
                                        f"({protocol}). Last output:\n{_tail(log_path)}")
            row = parse_csv(csv_path)[-1]
            latencies, span = read_profile_export(export)
            level = PerfAnalyzerLevel(
                concurrency, requests, span, {q: row[f"p{q}_ms"] for q in PERCENTILES}, row["mean_ms"],
                latencies_ms=latencies, window_throughput_per_s=row["throughput_per_s"], client_cpu_s=cpu,
                wall_s=wall, errors=requests - latencies.size)
            log.info("perf_analyzer c=%d: %.0f infer/s, p50 %.2f ms, p99 %.2f ms (client %.2f CPU-s)", concurrency,
                     level.throughput, level.percentile(50), level.percentile(99), cpu)
            levels.append(level)
    return levels
