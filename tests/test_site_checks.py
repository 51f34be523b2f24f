"""A site's own checks (issue 9 point 1): declared beside the config, recorded like bundled ones.

The example in examples/site_checks/ runs as shipped (its config read through ${VAR}s that
point at a real PostgreSQL, the sandbox's HTTPS API and a real folder) beside the bundled suite.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from check_runs import CHECKS, CheckRun, newest_run
from pytest_maintcheck.catalogue import RECOVERY_STEPS
from pytest_maintcheck.sandbox import SandboxApi, SandboxDatabase

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "site_checks"
PACS = "test_pacs_archive_room[pacs-archive]"
HL7 = "test_daily_metric[hl7-inbound-queue]"
MAINTCHECK = (sys.executable, "-m", "pytest_maintcheck.cli")
VIEWER = "test_daily_metric[viewer-cache-hits]"
CATEGORY = "Medical imaging archive capacity"


@dataclass
class Site:
    """The example copied into a folder, with its ${VAR}s pointing at real parts."""

    pytester: pytest.Pytester
    db: SandboxDatabase

    @property
    def config_path(self) -> Path:
        return self.pytester.path / "maintcheck.yaml"

    def add_waivers(self, *checks: str) -> None:
        config = yaml.safe_load(self.config_path.read_text())
        why = "accepted until the new array, CHG-9"
        config["waivers"] = [
            {"check": c, "justification": why, "expires": "2999-12-31"} for c in checks
        ]
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def unprocessed(self, count: int) -> None:
        with self.db.connect() as conn:
            conn.execute("DELETE FROM hl7_inbound")
            conn.execute(
                "INSERT INTO hl7_inbound (processed_at) SELECT NULL FROM generate_series(1, %s)",
                (count,),
            )

    def run(self, *args: str, report_dir: str = "reports") -> CheckRun:
        result = self.pytester.runpytest_subprocess(
            str(CHECKS), str(self.pytester.path / "test_site_checks.py"),
            "--maintcheck-config", str(self.config_path), "--rootdir", str(self.pytester.path),
            "--maintcheck-report-dir", report_dir, "-p", "no:cacheprovider", *args,
        )  # fmt: skip
        return CheckRun(result, newest_run(self.pytester.path / report_dir, result.stdout.str()))


@pytest.fixture
def site(
    pytester: pytest.Pytester,
    pg_db: SandboxDatabase,
    https_api: SandboxApi,
    monkeypatch: pytest.MonkeyPatch,
) -> Site:
    for name in ("maintcheck.yaml", "test_site_checks.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    config = yaml.safe_load((pytester.path / "maintcheck.yaml").read_text())
    # the example's usage limits would make the verdict depend on this machine's disk
    target = config["siteChecks"]["pacs_archive_room"]["targets"][0]
    target["thresholds"]["usage"] = {"warn": 0.9999, "fail": 1.0}
    (pytester.path / "maintcheck.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    archive = pytester.path / "archive"
    archive.mkdir()
    # studies written per day: half the free space, so about two days of room are left
    growth = shutil.disk_usage(archive).free // 2
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE hl7_inbound (id serial PRIMARY KEY, processed_at timestamptz)")
    env = {
        "CLINICAL_DSN": pg_db.dsn,
        "PGPASSWORD": pg_db.password,
        "CLINICAL_API_HEALTH": https_api.url("/health"),
        "CLINICAL_CA_FILE": str(https_api.ca_file),
        "VIEWER_STATS_URL": https_api.url("/stats.json"),
        "PACS_ARCHIVE": str(archive),
        "PACS_DAILY_GROWTH": f"{growth}B",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    made = Site(pytester, pg_db)
    made.unprocessed(600)
    return made


def test_the_example_runs_beside_the_bundled_suite_with_every_record(site: Site) -> None:
    run = site.run("-m", "daily")
    out = run.result.stdout.str()
    assert run.result.ret == 1, out
    checks = run.by_name
    ran = {name: c["verdict"] for name, c in checks.items() if c["verdict"] != "skipped"}
    assert ran == {
        "test_health[clinical-api]": "pass",
        PACS: "violation",
        HL7: "degraded",
        VIEWER: "pass",
    }, out
    pacs = checks[PACS]
    assert pacs["check"] == "pacs_archive_room"
    assert (pacs["suite"], pacs["title"], pacs["incidentType"]) == (
        "daily",
        "PACS archive room",
        "availability",
    )
    assert pacs["severity"] == "critical"  # the target's severity over the declared "high"
    assert pacs["category"] == CATEGORY
    assert pacs["requirements"][0] == "HIPAA 164.310(d)(2)(iv) data backup and storage"
    assert 1.5 <= pacs["metrics"]["daysOfRoom"] <= 2.5
    assert pacs["thresholds"]["daysOfRoom"]["higherIsWorse"] is False
    assert "pacs-archive: room left " in pacs["message"]
    assert "(warn < 30 days, fail < 7 days)" in pacs["message"]
    hl7 = checks[HL7]
    assert hl7["metrics"] == {"hl7-inbound-queue": 600}
    assert hl7["severity"] == "high"
    assert "HL7 messages waiting 600 (warn > 500, fail > 2000)" in hl7["message"]
    assert "Check the interface engine's inbound channel" in hl7["findings"][0]["action"]

    compliance = {c["category"]: c for c in run.record("compliance.json")}
    imaging = compliance[CATEGORY]
    assert imaging["status"] == "violation"
    assert "NIST SP 800-53 CP-2(2) capacity planning" in imaging["requirements"]
    assert imaging["findings"][0]["severity"] == "high"  # critical is "high" in the seed
    assert compliance["Availability and system health monitoring"]["status"] == "warning"

    incidents = [i for i in run.record("incidents.json") if i["nodeid"].endswith(PACS)]
    assert len(incidents) == 1
    incident = incidents[0]
    assert (incident["type"], incident["severity"]) == ("availability", "critical")
    assert incident["title"] == "PACS archive room: pacs-archive"
    steps = [s["action"] for s in incident["steps"]]
    assert steps[0].startswith("Move older studies to the long-term tier")
    assert tuple(steps[1:]) == RECOVERY_STEPS

    report = (run.run_dir / "report.html").read_text()
    for name in (PACS, HL7, VIEWER, CATEGORY):
        assert name in report, name
    log = run.record("maintenance-log.json")
    assert any(f"{PACS}: violation:" in line for line in log["details"]["findings"])


def test_site_and_metric_checks_are_waivable(site: Site) -> None:
    site.unprocessed(2500)
    site.add_waivers(PACS, HL7)
    run = site.run()
    assert run.result.ret == 0, run.result.stdout.str()
    checks = run.by_name
    for name in (PACS, HL7):
        assert (checks[name]["verdict"], checks[name]["waived"]) == ("violation", True), name
    compliance = {c["category"]: c for c in run.record("compliance.json")}
    assert compliance[CATEGORY]["status"] == "warning"
    assert "[WAIVED until 2999-12-31" in compliance[CATEGORY]["findings"][0]["description"]
    report = (run.run_dir / "report.html").read_text()
    assert report.count("violation (waived)") >= 2


def test_a_site_check_is_selected_by_its_declared_suite(site: Site) -> None:
    def selected(marker: str) -> str:
        result = site.pytester.runpytest_subprocess(
            str(site.pytester.path / "test_site_checks.py"), str(CHECKS / "test_metrics.py"),
            "--maintcheck-config", str(site.config_path), "--rootdir", str(site.pytester.path),
            "-p", "no:cacheprovider", "--collect-only", "-q", "-m", marker,
        )  # fmt: skip
        return result.stdout.str()

    daily = selected("daily")
    assert PACS in daily
    assert HL7 in daily
    others = selected("weekly or monthly")
    assert "test_pacs_archive_room" not in others
    assert "hl7" not in others


def test_maintcheck_run_collects_the_checks_beside_the_config(site: Site) -> None:
    out = subprocess.run(
        [*MAINTCHECK, "run", "-m", "daily", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=site.pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"test_site_checks.py::{PACS}" in out.stdout


# ---------------------------------------------------------------------------- bad declarations

FULL = """
    suite="daily",
    title="HL7 queue",
    severity="high",
    category="Availability and system health monitoring",
    incident_type="availability",
    action="Drain the queue.",
"""


def run_declared(
    pytester: pytest.Pytester, source: str, config: dict[str, Any] | None = None
) -> tuple[pytest.RunResult, Path]:
    path = pytester.path / "test_site.py"
    path.write_text(textwrap.dedent(source).lstrip())
    (pytester.path / "maintcheck.yaml").write_text(yaml.safe_dump(config or {"version": 1}))
    result = pytester.runpytest_subprocess(
        str(path), "--maintcheck-config", str(pytester.path / "maintcheck.yaml"),
        "--rootdir", str(pytester.path), "-p", "no:cacheprovider",
    )  # fmt: skip
    return result, path


def assert_usage_error(result: pytest.RunResult, expected: str) -> None:
    err = result.stderr.str()
    assert result.ret == 4, result.stdout.str() + err
    assert expected in err, err
    assert "Traceback" not in err + result.stdout.str()


HEADER = "from pytest_maintcheck.api import Assessment, SiteTarget, site_check\n"


def test_an_incomplete_declaration_is_a_usage_error_naming_file_and_line(
    pytester: pytest.Pytester,
) -> None:
    result, path = run_declared(
        pytester,
        HEADER + 'queue = site_check(\n    "hl7_queue",\n    suite="daily",\n)\n\n'
        "@queue\ndef test_queue(assessment: Assessment) -> None:\n    pass\n",
    )
    assert_usage_error(
        result,
        f"{path}:2: site check 'hl7_queue': incomplete declaration: give title, severity, "
        "category, incident_type, action",
    )


def test_a_site_check_may_not_take_a_bundled_key(pytester: pytest.Pytester) -> None:
    result, path = run_declared(
        pytester,
        HEADER + f'\n\n@site_check("health", {FULL})\n'
        "def test_mine(assessment: Assessment) -> None:\n    pass\n",
    )
    assert_usage_error(
        result,
        f"{path}:4: site check 'health': clashes with the bundled check 'health' (Service health)",
    )


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ('severity="urgent"', "severity must be one of low, medium, high, critical, got 'urgent'"),
        ('suite="hourly"', "suite must be one of daily, weekly, monthly, got 'hourly'"),
        ('category="Interfaces"', "category 'Interfaces' is new: give requirements"),
        ("thresholds={'depth': 5}", "thresholds: 'depth' is not one of its metrics"),
    ],
)  # fmt: skip
def test_each_declared_field_is_checked(
    pytester: pytest.Pytester, declaration: str, expected: str
) -> None:
    name = declaration.split("=")[0]
    fields = "".join(
        line + "\n" for line in FULL.splitlines() if not line.startswith(f"    {name}=")
    )
    result, path = run_declared(
        pytester,
        HEADER + f'\n@site_check("hl7_queue", {declaration},{fields})\n'
        "def test_mine(assessment: Assessment) -> None:\n    pass\n",
    )
    assert_usage_error(result, f"{path}:3: site check 'hl7_queue': {expected}")


def test_an_unknown_key_and_a_key_declared_twice_are_usage_errors(
    pytester: pytest.Pytester,
) -> None:
    result, path = run_declared(
        pytester,
        "import pytest\n\n\n"
        '@pytest.mark.maintcheck("my_check")\n'
        "def test_mine(assessment) -> None:\n    pass\n",
    )
    assert_usage_error(result, f"{path}:4: check 'my_check' is not in the catalogue")
    result, path = run_declared(
        pytester,
        HEADER + f'a = site_check("hl7_queue", {FULL})\nb = site_check("hl7_queue", {FULL})\n\n'
        "@a\ndef test_one(assessment: Assessment) -> None:\n    pass\n\n"
        "@b\ndef test_two(assessment: Assessment) -> None:\n    pass\n",
    )
    assert_usage_error(result, "site check 'hl7_queue' is declared twice")


SITE_CHECK = (
    HEADER
    + "from pytest_maintcheck.api import Metric\n\n"
    + f'@site_check("hl7_queue", metrics=[Metric("depth", "count")], {FULL})\n'
    + "def test_queue(site_target: SiteTarget, assessment: Assessment) -> None:\n"
    + '    assessment.measure(site_target.thresholds.get("depth"), 12)\n'
)


def test_site_check_targets_are_validated_like_every_section(pytester: pytest.Pytester) -> None:
    target = {"name": "engine-a", "thresholds": {"dpeth": {"warn": 5, "fail": 10}}}
    config = {"version": 1, "siteChecks": {"hl7_queue": {"targets": [target]}}}
    result, _ = run_declared(pytester, SITE_CHECK, config)
    config_path = pytester.path / "maintcheck.yaml"
    assert_usage_error(
        result,
        f"{config_path}:6: siteChecks.hl7_queue.targets.engine-a.thresholds.dpeth: unknown "
        "threshold: hl7_queue measures depth; did you mean 'depth'?",
    )
    config["siteChecks"]["hl7_queue"]["targets"] = [{"name": "engine-a", "parms": {}}]
    result, _ = run_declared(pytester, SITE_CHECK, config)
    assert_usage_error(result, "targets[0].parms: unknown key; did you mean 'params'?")
    config["siteChecks"] = {"health": {"targets": [{"name": "x"}]}}
    result, _ = run_declared(pytester, SITE_CHECK, config)
    assert_usage_error(result, "siteChecks.health: 'health' is a bundled check (Service health)")


def test_a_site_check_is_judged_with_its_targets_thresholds(pytester: pytest.Pytester) -> None:
    targets = [
        {"name": "engine-a", "thresholds": {"depth": {"warn": 5, "fail": 10}}},
        {"name": "engine-b", "thresholds": {"depth": 20}, "params": {"channel": "ADT"}},
    ]
    config = {"version": 1, "siteChecks": {"hl7_queue": {"targets": targets}}}
    result, _ = run_declared(pytester, SITE_CHECK, config)
    assert result.ret == 1, result.stdout.str()
    run = CheckRun(result, newest_run(pytester.path / "reports"))
    verdicts = {c["target"]: c["verdict"] for c in run.check_list}
    assert verdicts == {"engine-a": "violation", "engine-b": "pass"}
    assert "depth 12 (warn > 5, fail > 10)" in run.checks["engine-a"]["message"]


def test_a_site_check_without_targets_is_skipped_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    result, _ = run_declared(pytester, SITE_CHECK)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 skipped*"])
    run = CheckRun(result, newest_run(pytester.path / "reports"))
    assert (
        run.check_list[0]["message"]
        == "nothing to check: no siteChecks.hl7_queue in maintcheck.yaml"
    )
