"""`maintcheck rules`, `monitoring-config` and `schedule` (issue 12, points 3 and 4).

promtool (Debian's prometheus package, installed by scripts/ensure-ops-tools) checks the rules
and evaluates them against the series a real run wrote; systemd-analyze verifies the units
where the machine has it; a crontab line is run by a shell as cron would run it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from example_config import EXAMPLE, example_environ
from pytest_maintcheck.cli import main
from pytest_maintcheck.export.schedule import NOT_SCHEDULED, SECTIONS
from pytest_maintcheck.targets import TARGETS

SEED_SCRIPT_KEYS = {"name", "purpose", "schedule", "parameters", "dependencies", "logging"}


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} not found: run scripts/ensure-ops-tools (make test does)"
    return found


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


# the example's channel URLs are secrets: the exports name a channel, never print its URL
SECRET_ENV = example_environ(OPS_WEBHOOK_URL="https://hooks.example.invalid/T000")


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return EXAMPLE


def test_rules_mirror_the_thresholds_and_pass_promtool(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _out(capsys, "rules", "--config", str(example))
    rules = tmp_path / "maintcheck.rules.yml"
    rules.write_text(text)
    checked = subprocess.run(
        [_tool("promtool"), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    exprs = {r["expr"] for g in yaml.safe_load(text)["groups"] for r in g["rules"]}
    series = 'maintcheck_check_metric{target="clinical-api",metric="responseTime"}'
    assert f"{series} > 300" in exprs  # healthChecks[0].thresholds.responseTime.warn
    assert f"{series} > 800" in exprs
    cache = 'maintcheck_check_metric{target="primary",metric="cacheHitRatio"}'
    assert f"{cache} < 0.9" in exprs  # lower is worse: the comparison turns around
    for secret in SECRET_ENV.values():  # a channel is named, its secret URL never
        assert secret not in text


def _site(tmp_path: Path) -> Path:
    """A config whose storage check is judged against a usage level every disk crosses."""
    (tmp_path / "scans").mkdir()
    config = {
        "version": 1,
        "system": "Cardiology",
        "environment": "production",
        "healthChecks": [
            {
                "service": "scans",
                "type": "storage",
                "endpoint": "scans",
                "thresholds": {"usage": {"warn": 0.0000001, "fail": 0.0000002}},
            }
        ],
        "reporting": {"prometheusTextfile": str(tmp_path / "maintcheck.prom")},
    }
    path = tmp_path / "maintcheck.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _crontab_command(text: str, suite: str) -> str:
    line = next(ln for ln in text.splitlines() if not ln.startswith("#") and f" -m {suite} " in ln)
    return line.split(" ", 5)[5]  # after minute, hour, day, month, weekday


def test_a_crontab_line_runs_the_suite_and_its_rules_fire_on_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _site(tmp_path)
    crontab = _out(
        capsys, "schedule", "--config", str(config), "--report-dir", str(tmp_path / "reports")
    )
    # as cron runs it: /bin/sh -c, another working directory, a log file
    done = subprocess.run(
        ["/bin/sh", "-c", _crontab_command(crontab, "daily")], cwd="/", timeout=300
    )
    assert done.returncode == 1  # the usage level was crossed: a violation
    log = (tmp_path / "reports" / "daily.log").read_text()
    assert "VIOLATION" in log
    document = yaml.safe_load(_out(capsys, "rules", "--config", str(config)))
    for group in document["groups"]:
        for rule in group["rules"]:
            del rule["annotations"]  # promtool compares them whole; labels are what we test
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(document))
    # the textfile's series, fed to promtool's rule unit test: the threshold rules fire
    series = []
    for family in text_string_to_metric_families((tmp_path / "maintcheck.prom").read_text()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            series.append({"series": f"{s.name}{{{labels}}}", "values": f"{s.value}x20"})
    ident = {"suite": "daily", "check": "health", "target": "scans"}
    usage = {**ident, "metric": "usage", "unit": "ratio"}
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "MaintcheckViolation",
                        "exp_alerts": [{"exp_labels": {**ident, "severity": "critical"}}],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "MaintcheckThresholdFail",
                        "exp_alerts": [
                            {"exp_labels": {**usage, "severity": "critical", "level": "fail"}}
                        ],
                    },
                ],
            }
        ],
    }
    unit_test = tmp_path / "rules.test.yml"
    unit_test.write_text(yaml.safe_dump(test))
    tested = subprocess.run(
        [_tool("promtool"), "test", "rules", str(unit_test)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_monitoring_config_is_the_seeds_record(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record: dict[str, Any] = json.loads(
        _out(capsys, "monitoring-config", "--config", str(example), "--retention", "90d")
    )
    assert set(record) == {"metrics", "alerts", "dashboards"}
    for metric in record["metrics"]:
        assert {"name", "type", "interval", "retention"} <= set(metric)
        assert metric["type"] == "gauge"
        assert metric["retention"] == "90d"
    daily = 'maintcheck_last_success_timestamp_seconds{suite="daily"}'
    assert {"name": daily, "type": "gauge", "interval": 86400, "retention": "90d"} in record[
        "metrics"
    ]
    health = 'maintcheck_check_metric{check="health",target="clinical-api"}'
    assert next(m for m in record["metrics"] if m["name"] == health)["interval"] == 60
    for alert in record["alerts"]:
        assert {"condition", "threshold", "duration", "channels"} <= set(alert)
    api = [a for a in record["alerts"] if 'target="clinical-api"' in a["condition"]]
    assert api
    assert all(a["channels"] == ["ops"] for a in api)  # healthChecks[0].alerts.channels
    for dashboard in record["dashboards"]:
        assert set(dashboard) == {"name", "metrics", "refresh"}


def test_schedule_gives_each_suite_a_maintenance_script_record(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _out(capsys, "schedule", "--config", str(example))
    records = [
        json.loads(ln.removeprefix("# MaintenanceScript: "))
        for ln in text.splitlines()
        if ln.startswith("# MaintenanceScript: ")
    ]
    assert [r["name"] for r in records] == [
        "maintcheck-daily",
        "maintcheck-weekly",
        "maintcheck-monthly",
    ]
    for record in records:
        assert set(record) == SEED_SCRIPT_KEYS
        assert set(record["logging"]) == {"level", "output"}
    daily, weekly, monthly = records
    assert daily["schedule"] == "15 2 * * *"
    assert "healthChecks: clinical-api" in daily["dependencies"]
    assert "backups: clinical-nightly" in weekly["dependencies"]
    assert "backups: cluster" in weekly["dependencies"]  # a pgBackRest stanza
    assert "pgbackrest (its catalog, WAL archive and restore tests)" in weekly["dependencies"]
    assert "replication: primary" in daily["dependencies"]
    assert "configReview: primary" in monthly["dependencies"]
    assert daily["parameters"]["exitStatus"]["75"].startswith("another run")
    as_json = json.loads(_out(capsys, "schedule", "--config", str(example), "--json"))
    assert as_json == records


def test_systemd_units_verify(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine (the issue asks for it where present)")
    units = tmp_path / "units"
    _out(capsys, "schedule", "--config", str(example), "--systemd", "--output-dir", str(units))
    names = sorted(p.name for p in units.iterdir())
    assert names == [
        f"maintcheck-{s}.{k}" for s in ("daily", "monthly", "weekly") for k in ("service", "timer")
    ]
    service = (units / "maintcheck-daily.service").read_text()
    assert "SuccessExitStatus=75" in service
    assert json.loads(service.splitlines()[0].removeprefix("# MaintenanceScript: "))[
        "schedule"
    ] == ("*-*-* 02:15:00")
    verified = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in units.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # and the tool does check here: a unit with a relative ExecStart is refused
    broken = tmp_path / "broken" / "maintcheck-broken.service"
    broken.parent.mkdir()
    broken.write_text(service.replace("ExecStart=/", "ExecStart=no-such-dir/"))
    refused = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0


def test_usage_errors_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert main(["rules", "--config", missing]) == 4
    assert main(["schedule", "--config", missing]) == 4
    config = _site(tmp_path)
    assert main(["monitoring-config", "--config", str(config), "--retention", "soon"]) == 4
    assert main(["schedule", "--config", str(config), "--user", "maint"]) == 4
    err = capsys.readouterr().err
    assert "config not found" in err
    assert "--retention" in err


def test_each_target_section_belongs_to_a_suite_schedule() -> None:
    """A section renamed or added in targets.TARGETS (as the physical backups split `backups`)
    would otherwise drop out of every suite's dependencies without a word."""
    sections = {kind.section for kind in TARGETS.values()}
    listed = [name for names in SECTIONS.values() for name in names]
    assert set(listed) - sections == set(), "named in schedule.SECTIONS, unknown to TARGETS"
    unplaced = {
        s for s in sections - set(listed) - NOT_SCHEDULED if not s.startswith("metrics (suite: ")
    }
    # a subset of a section a suite already lists is reached through it
    unplaced = {s for s in unplaced if s.split(" ")[0] not in {n.split(" ")[0] for n in listed}}
    assert unplaced == set(), "a TARGETS section no suite's schedule names"
