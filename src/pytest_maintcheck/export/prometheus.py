"""The run's results as a node_exporter textfile (``reporting.prometheusTextfile``).

Every series is a gauge (a run is a snapshot, never a count since start), labelled with its
suite. A run replaces the series of the suites it ran and keeps the others' from the file it
finds, read back with prometheus_client's parser, so a weekly run does not erase the daily
suite's last success. prometheus_client writes a temp file beside the target, then renames it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from pytest_maintcheck.result import CheckResult

VERDICT_VALUE = {"pass": 0, "degraded": 1, "violation": 2, "error": 2}  # error: could not measure
LOCK_TIMEOUT = 30.0  # seconds another run may hold the textfile folder while it rewrites
TEXTFILE_MODE = 0o644  # node_exporter runs as its own account
LAST_SUCCESS = "maintcheck_last_success_timestamp_seconds"

# name -> (help, label names); every family carries "suite"
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "maintcheck_check_verdict": (
        "Verdict of a check for one target: 0 pass, 1 degraded (warning), 2 violation "
        "(or could not measure).",
        ("suite", "check", "target"),
    ),
    "maintcheck_check_waived": (
        "1 when the check's finding is covered by an active waiver.",
        ("suite", "check", "target"),
    ),
    "maintcheck_check_metric": (
        "A value the check measured, in the unit of the unit label.",
        ("suite", "check", "target", "metric", "unit"),
    ),
    "maintcheck_check_threshold": (
        "The configured warn or fail level the metric was judged against.",
        ("suite", "check", "target", "metric", "level"),
    ),
    "maintcheck_last_success_timestamp_seconds": (
        "When a run of the suite last finished with every selected check reaching a verdict.",
        ("suite",),
    ),
    "maintcheck_last_run_timestamp_seconds": (
        "When a run of the suite last finished, whatever its outcome.",
        ("suite",),
    ),
    "maintcheck_run_duration_seconds": (
        "How long the last run of the suite took.",
        ("suite",),
    ),
    "maintcheck_run_checks": (
        "Checks of the last run of the suite, by verdict.",
        ("suite", "verdict"),
    ),
}


@dataclass(eq=False)  # a registry keys its collectors by identity
class Samples(Collector):
    """Gauge samples by family; a prometheus_client collector of exactly these."""

    rows: dict[str, dict[tuple[str, ...], float]] = field(
        default_factory=lambda: {name: {} for name in FAMILIES}
    )

    def add(self, family: str, labels: Mapping[str, str], value: float) -> None:
        names = FAMILIES[family][1]
        self.rows[family][tuple(str(labels.get(n, "")) for n in names)] = float(value)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (help_text, labels) in FAMILIES.items():
            family = GaugeMetricFamily(name, help_text, labels=list(labels))
            for values, value in sorted(self.rows[name].items()):
                family.add_metric(list(values), value)
            yield family


def run_samples(
    results: Iterable[CheckResult],
    *,
    started: datetime,
    finished: datetime,
    interrupted: bool,
) -> tuple[Samples, set[str]]:
    """This run's samples and the suites it ran."""
    samples = Samples()
    by_suite: dict[str, list[CheckResult]] = {}
    for r in results:
        by_suite.setdefault(r.suite, []).append(r)
        if r.verdict == "skipped":
            continue
        _check_samples(samples, r)
    for suite, ran in by_suite.items():
        label = {"suite": suite}
        samples.add("maintcheck_last_run_timestamp_seconds", label, finished.timestamp())
        samples.add("maintcheck_run_duration_seconds", label, (finished - started).total_seconds())
        for verdict in ("pass", "degraded", "violation", "error", "skipped"):
            count = sum(1 for r in ran if r.verdict == verdict)
            samples.add("maintcheck_run_checks", {**label, "verdict": verdict}, count)
        if not interrupted and not any(_incomplete(r) for r in ran):
            samples.add("maintcheck_last_success_timestamp_seconds", label, finished.timestamp())
    return samples, set(by_suite)


def _check_samples(samples: Samples, r: CheckResult) -> None:
    ident = {"suite": r.suite, "check": r.check, "target": r.target or ""}
    samples.add("maintcheck_check_verdict", ident, VERDICT_VALUE.get(r.verdict.value, 2))
    samples.add("maintcheck_check_waived", ident, 1 if r.waived else 0)
    thresholds = r.thresholds
    for metric, value in r.metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # lists, texts and flags are for the report, not for a gauge
        limits = thresholds.get(metric) or {}
        unit = str(limits.get("unit") or _unit(metric))
        samples.add("maintcheck_check_metric", {**ident, "metric": metric, "unit": unit}, value)
        for level in ("warn", "fail"):
            if isinstance(limits.get(level), int | float):
                where = {**ident, "metric": metric, "level": level}
                samples.add("maintcheck_check_threshold", where, limits[level])


def _unit(metric: str) -> str:
    from pytest_maintcheck.verdict import METRICS

    return METRICS[metric].unit if metric in METRICS else "count"


def _incomplete(r: CheckResult) -> bool:
    """An error, or a skip of a configured target: the suite did not fully run."""
    return r.verdict == "error" or (r.verdict == "skipped" and not r.not_configured)


def kept_samples(text: str, replaced: set[str], into: Samples) -> None:
    """The other suites' series of an earlier textfile, read with prometheus_client's parser;
    and a suite's last success, unless this run is a newer one."""
    from prometheus_client.parser import text_string_to_metric_families

    succeeded = {values[0] for values in into.rows[LAST_SUCCESS]}
    for family in text_string_to_metric_families(text):
        if family.name not in FAMILIES:
            continue
        ours = succeeded if family.name == LAST_SUCCESS else replaced
        for sample in family.samples:
            suite = sample.labels.get("suite")
            if suite and suite not in ours and sample.name == family.name:
                into.add(family.name, sample.labels, sample.value)


def export_run(
    path: Path,
    results: Iterable[CheckResult],
    *,
    started: datetime,
    finished: datetime,
    interrupted: bool,
) -> list[str]:
    """Rewrite the textfile for this run; notes for the operator (never an exception)."""
    from prometheus_client import write_to_textfile

    samples, suites = run_samples(
        results, started=started, finished=finished, interrupted=interrupted
    )
    notes: list[str] = []
    try:
        with _folder_lock(path.parent):
            try:
                kept_samples(path.read_text(encoding="utf-8"), suites, samples)
            except FileNotFoundError:
                pass
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                notes.append(
                    f"{path}: earlier textfile unreadable ({exc}); other suites' series dropped"
                )
            registry = CollectorRegistry(auto_describe=False)
            registry.register(samples)
            write_to_textfile(str(path), registry)
            os.chmod(path, TEXTFILE_MODE)
    except OSError as exc:
        notes.append(
            f"could not write the Prometheus textfile {path}: {exc.strerror or exc}; "
            "check that its folder exists and this account may write there"
        )
    return notes


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Concurrent runs (daily and weekly) take turns reading and rewriting the file."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OSError(f"another run held {folder} over {LOCK_TIMEOUT:.0f}s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
