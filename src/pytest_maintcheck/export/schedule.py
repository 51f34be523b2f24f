"""Crontab lines and systemd units for the daily, weekly and monthly suites, each with the
seed's MaintenanceScript record (name, purpose, schedule, parameters, dependencies, logging)."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_maintcheck.catalogue import CHECKS, SUITES
from pytest_maintcheck.config import Config
from pytest_maintcheck.runlock import EXIT_LOCKED
from pytest_maintcheck.targets import TARGETS

# quiet hours, staggered so the suites never start together (the lock would refuse overlap)
CRON = {"daily": "15 2 * * *", "weekly": "15 3 * * 0", "monthly": "15 4 1 * *"}
ON_CALENDAR = {
    "daily": "*-*-* 02:15:00",
    "weekly": "Sun *-*-* 03:15:00",
    "monthly": "*-*-01 04:15:00",
}
TIMEOUT = {"daily": "2h", "weekly": "6h", "monthly": "6h"}  # a hung run is stopped, then reported
# the config sections each suite reaches, named as in targets.TARGETS (a metrics entry belongs
# to its own suite); tests/test_ops_exports.py holds this table to TARGETS so neither drifts
# sections whose checks never run on a schedule: the rollback point is judged only in a change's
# gate (--maintcheck-change), in whichever suite that gate runs
NOT_SCHEDULED = {"changeManagement.rollbackPoint"}
SECTIONS = {
    "daily": (
        "healthChecks",
        "hosts",
        "replication",
        "archiving",
        "securityMonitoring.authLog",
        "securityMonitoring.sessions",
    ),
    "weekly": (
        "databaseMaintenance",
        "backups (kind: pg_dump or files)",
        "backups (kind: pgbackrest or barman)",
        "healthChecks (with several endpoints)",
        "pooling",
        "configReview (with host)",
    ),
    "monthly": (
        "certificates",
        "accessReview",
        "dependencies",
        "policies",
        "configReview",
        "securityPatches",
        "encryption",
        "encryption.atRest",
        "healthChecks (type: storage)",  # the capacity review projects its history
    ),
}


@dataclass(frozen=True)
class Job:
    """One suite's scheduled run."""

    suite: str
    argv: tuple[str, ...]
    workdir: Path
    record: dict[str, Any]

    @property
    def name(self) -> str:
        return f"maintcheck-{self.suite}"

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def maintcheck_executable() -> list[str]:
    """The console script of this installation, else this Python running the module."""
    beside = Path(sys.executable).parent / "maintcheck"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("maintcheck")
    return [found] if found else [sys.executable, "-m", "pytest_maintcheck.cli"]


def jobs(config: Config, report_dir: Path, *, systemd: bool, log_dir: Path | None) -> list[Job]:
    config_path = config.path.resolve()
    out = []
    for suite in SUITES:
        argv = (
            *maintcheck_executable(),
            "run",
            "--config",
            str(config_path),
            "-m",
            suite,
            "-p",
            "no:cacheprovider",
            "--maintcheck-report-dir",
            str(report_dir.resolve()),
        )
        logging = (
            {"level": "info", "output": f"journal (SyslogIdentifier=maintcheck-{suite})"}
            if systemd
            else {
                "level": "info",
                "output": str((log_dir or report_dir).resolve() / f"{suite}.log"),
            }
        )
        record = {
            "name": f"maintcheck-{suite}",
            "purpose": _purpose(suite),
            "schedule": ON_CALENDAR[suite] if systemd else CRON[suite],
            "parameters": {
                "suite": suite,
                "config": str(config_path),
                "reportDir": str(report_dir.resolve()),
                "failOn": "violation",
                "apply": False,
                "command": list(argv),
                "exitStatus": {
                    "0": "nothing at or above fail-on",
                    "1": "a check failed",
                    "4": "usage or config error",
                    str(EXIT_LOCKED): "another run of this suite and config held the lock",
                },
            },
            "dependencies": list(_dependencies(config, suite)),
            "logging": logging,
        }
        out.append(Job(suite, argv, config_path.parent, record))
    return out


def _purpose(suite: str) -> str:
    titles = sorted({spec.title for spec in CHECKS.values() if spec.suite == suite})
    return f"The {suite} maintenance checks: " + ", ".join(titles)


def _dependencies(config: Config, suite: str) -> Iterator[str]:
    """What the suite reaches: the configured targets of its sections, then its tools."""
    seen: set[str] = set()
    for kind in TARGETS.values():
        section = kind.section
        mine = section in SECTIONS[suite] or section == f"metrics (suite: {suite})"
        if not mine:
            continue
        for target in kind.targets(config):
            entry = f"{section.split(' ')[0]}: {kind.ident(target)}"
            if entry not in seen:
                seen.add(entry)
                yield entry
    if suite == "weekly" and any(b.kind == "pg_dump" for b in config.backups):
        yield "pg_restore (PostgreSQL client, for restore tests)"
    for tool in ("pgbackrest", "barman"):
        if suite == "weekly" and any(b.kind == tool for b in config.backups):
            yield f"{tool} (its catalog, WAL archive and restore tests)"
    yield "pytest-maintcheck (this package)"


def crontab(config: Config, report_dir: Path, log_dir: Path | None = None) -> str:
    """Crontab lines, each under its MaintenanceScript record as a comment."""
    lines = [
        f"# maintcheck schedule for {config.system or config.path.name}: install with "
        "`maintcheck schedule | crontab -` (or append to yours).",
        f"# Exit {EXIT_LOCKED}: another run of the same suite and config held the lock.",
    ]
    for job in jobs(config, report_dir, systemd=False, log_dir=log_dir):
        output = Path(job.record["logging"]["output"])
        command = (
            f"cd {shlex.quote(str(job.workdir))} && mkdir -p {shlex.quote(str(output.parent))} "
            f"&& {job.command} >>{shlex.quote(str(output))} 2>&1"
        )
        lines += [
            f"# MaintenanceScript: {json.dumps(job.record, ensure_ascii=False)}",
            f"{CRON[job.suite]} {command.replace('%', chr(92) + '%')}",  # cron: % is a newline
        ]
    return "\n".join(lines) + "\n"


def systemd_units(config: Config, report_dir: Path, user: str | None = None) -> dict[str, str]:
    """``maintcheck-<suite>.service`` and ``.timer`` for each suite, by file name."""
    units = {}
    for job in jobs(config, report_dir, systemd=True, log_dir=None):
        what = f"{job.suite} maintenance checks of {config.system or config.path.name}"
        record = json.dumps(job.record, ensure_ascii=False)
        service = [
            f"# MaintenanceScript: {record}",
            "[Unit]",
            f"Description=maintcheck: {what}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            *([f"User={user}"] if user else []),
            f"WorkingDirectory={job.workdir}",
            f"ExecStart={_systemd_quote(job.argv)}",
            f"# exit {EXIT_LOCKED}: another run of this suite held the lock; not a failure",
            f"SuccessExitStatus={EXIT_LOCKED}",
            f"TimeoutStartSec={TIMEOUT[job.suite]}",
            f"SyslogIdentifier={job.name}",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "",
        ]
        timer = [
            "[Unit]",
            f"Description=maintcheck: schedule of the {what}",
            "",
            "[Timer]",
            f"OnCalendar={ON_CALENDAR[job.suite]}",
            "Persistent=true",
            "RandomizedDelaySec=5m",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
        units[f"{job.name}.service"] = "\n".join(service)
        units[f"{job.name}.timer"] = "\n".join(timer)
    return units


def _systemd_quote(argv: tuple[str, ...]) -> str:
    """ExecStart quoting: double quotes around words with spaces, % and $ doubled."""
    out = []
    for word in argv:
        word = word.replace("%", "%%").replace("$", "$$")
        if any(c in word for c in ' \t"\\;'):
            word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(word)
    return " ".join(out)


def scripts(config: Config, report_dir: Path, *, systemd: bool) -> list[dict[str, Any]]:
    """The MaintenanceScript records alone."""
    return [j.record for j in jobs(config, report_dir, systemd=systemd, log_dir=None)]
