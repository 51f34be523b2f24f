"""Plugin behaviour through a real pytest run (pytester): verdicts, exit codes, records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from check_runs import newest_run, read_record, run_dirs

pytest_plugins = ["pytester"]

LATENCY_CHECKS = """
import pytest
from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold.parse("responseTime", {"warn": 300, "fail": 800})

@pytest.mark.maintcheck("health")
@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_latency(value, assessment):
    assessment.measure(LIMIT, value, subject="clinical-api")
"""


def checks(pytester: pytest.Pytester, values: dict[str, int], name: str = "test_checks") -> None:
    body = LATENCY_CHECKS.replace("VALUES", repr(list(values.values()))).replace(
        "IDS", repr(list(values))
    )
    pytester.makepyfile(**{name: body})


def config(pytester: pytest.Pytester, extra: str = "") -> Path:
    return pytester.makefile(".yaml", maintcheck="version: 1\nsystem: test system\n" + extra)


def html_rows(page: str) -> list[list[str]]:
    """The result rows pytest-html 4 keeps as JSON in the page, tags stripped from each cell."""
    import html
    import re

    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob is not None
    data = json.loads(html.unescape(blob.group(1)))
    rows = []
    for test in data["tests"].values():
        for entry in test:
            cells = [re.sub(r"<[^>]+>", "", c) for c in entry["resultsTableRow"]]
            rows.append(cells[1:])  # drop the outcome column pytest-html puts first
    return rows


def test_three_verdicts_reach_the_summary_line(pytester: pytest.Pytester) -> None:
    config(pytester)
    checks(pytester, {"fast": 100, "slow": 500, "down": 900})
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"passed": 1, "degraded": 1, "failed": 1}
    result.stdout.fnmatch_lines(
        [
            "*maintcheck findings*",
            "DEGRADED [[]high] test_latency[[]slow]: clinical-api: p95 response time 500 ms*",
            "*1 failed, 1 passed, 1 degraded*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*VIOLATION: clinical-api: p95 response time 900 ms (warn > 300 ms"
            ", fail > 800 ms) -> Check the service's logs*"
        ]
    )
    assert result.ret == 1


def test_degraded_alone_exits_zero_unless_fail_on_warning(pytester: pytest.Pytester) -> None:
    config(pytester)
    checks(pytester, {"fast": 100, "slow": 500})
    assert pytester.runpytest().ret == 0
    assert pytester.runpytest("--maintcheck-fail-on=warning").ret == 1


def test_fail_on_is_settable_in_the_ini_file(pytester: pytest.Pytester) -> None:
    config(pytester)
    checks(pytester, {"slow": 500})
    pytester.makeini("[pytest]\nmaintcheck_fail_on = warning\n")
    assert pytester.runpytest().ret == 1


def test_a_config_error_is_exit_4_with_one_message(pytester: pytest.Pytester) -> None:
    config(pytester, "healthChecks:\n  - service: api\n    type: api\n    endpont: https://a/\n")
    checks(pytester, {"fast": 100})
    result = pytester.runpytest_subprocess()
    assert result.ret == 4
    err = result.stderr.str()
    assert (
        "maintcheck.yaml:6: healthChecks[0].endpont: unknown key; did you mean 'endpoint'?" in err
    )
    assert "Traceback" not in err + result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_checks_without_a_config_are_a_usage_error(pytester: pytest.Pytester) -> None:
    checks(pytester, {"fast": 100})
    result = pytester.runpytest_subprocess()
    assert result.ret == 4
    assert "no config found" in result.stderr.str()


def test_silent_in_a_run_without_maintenance_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest()
    assert result.ret == 0
    assert "maintcheck records" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()
    config(pytester)  # a config beside the tests changes nothing either
    result = pytester.runpytest()
    assert result.ret == 0
    assert "maintcheck records" not in result.stdout.str()
    assert "html report" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_a_run_writes_its_records_and_report(pytester: pytest.Pytester) -> None:
    config(pytester)
    checks(pytester, {"fast": 100, "slow": 500, "down": 900})
    pytester.runpytest("--maintcheck-type=emergency")
    (run,) = run_dirs(pytester.path / "reports")
    names = {p.name for p in run.iterdir()}
    assert names == {
        "maintenance-log.json",
        "health.json",
        "results.json",
        "report.html",
        "compliance.json",
        "incidents.json",
        "database-maintenance.json",
    }
    assert not [p for p in (pytester.path / "reports").iterdir() if p.name.startswith(".")]
    log = read_record(run, "maintenance-log.json")
    assert log["taskId"] == run.name
    assert log["type"] == "emergency"
    assert log["status"] == "completed"
    assert set(log["performed"]) == {"by", "at", "duration"}
    assert len(log["details"]["findings"]) == 2
    assert len(log["details"]["followUp"]) == 2
    results = {c["target"]: c for c in read_record(run, "results.json")["checks"]}
    assert [results[t]["verdict"] for t in ("fast", "slow", "down")] == [
        "pass",
        "degraded",
        "violation",
    ]
    assert results["down"]["metrics"]["responseTime"] == 900
    assert results["down"]["thresholds"]["responseTime"]["fail"] == 800
    assert results["down"]["severity"] == "high"
    assert any("HIPAA" in r for r in results["down"]["requirements"])
    (compliance,) = read_record(run, "compliance.json")
    assert compliance["status"] == "violation"
    assert {f["severity"] for f in compliance["findings"]} == {"high"}
    (incident,) = read_record(run, "incidents.json")
    assert incident["timeline"]["detected"]
    assert not incident["timeline"]["resolved"]
    assert {s["status"] for s in incident["steps"]} == {"pending"}
    html = (run / "report.html").read_text()
    assert "Maintenance verdicts" in html
    rows = html_rows(html)
    verdict_cells = {cells[2]: cells[0] for cells in rows}  # pytest-html's test id column
    assert "degraded" in verdict_cells["test_checks.py::test_latency[slow]"]
    assert "violation" in verdict_cells["test_checks.py::test_latency[down]"]


def test_an_incident_is_resolved_by_a_later_passing_run(pytester: pytest.Pytester) -> None:
    config(pytester, "owners: {default: dba-oncall}\n")
    checks(pytester, {"api": 900})
    pytester.runpytest()
    first = run_dirs(pytester.path / "reports")[0]
    before = (first / "incidents.json").read_bytes()
    (incident,) = read_record(first, "incidents.json")
    assert {s["owner"] for s in incident["steps"]} == {"dba-oncall"}
    checks(pytester, {"api": 100})
    pytester.runpytest()
    second = run_dirs(pytester.path / "reports")[1]
    (resolved,) = read_record(second, "incidents.json")
    assert resolved["timeline"]["detected"] == incident["timeline"]["detected"]
    assert resolved["timeline"]["resolved"]
    assert (first / "incidents.json").read_bytes() == before  # an earlier run is never touched


def test_waived_violation_reports_but_does_not_fail(pytester: pytest.Pytester) -> None:
    config(
        pytester,
        "waivers:\n  - {check: 'test_latency[down]', justification: 'vendor fix"
        " OPS-231', expires: 2999-01-31}\n",
    )
    checks(pytester, {"down": 900})
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"waived": 1}
    assert result.ret == 0
    (run,) = run_dirs(pytester.path / "reports")
    (check,) = read_record(run, "results.json")["checks"]
    assert check["verdict"] == "violation"
    assert check["waived"] is True
    assert check["waiver"]["justification"] == "vendor fix OPS-231"
    assert read_record(run, "incidents.json") == []
    (compliance,) = read_record(run, "compliance.json")
    assert "WAIVED until 2999-01-31" in compliance["findings"][0]["description"]


def test_expired_waiver_is_a_finding_and_no_longer_protects(pytester: pytest.Pytester) -> None:
    config(
        pytester,
        "waivers:\n  - {check: 'test_latency[down]', justification: old,"
        " expires: 2020-01-01}\n  - {check: 'test_latency[fast]', justification:"
        " old, expires: 2020-01-01}\n",
    )
    checks(pytester, {"down": 900, "fast": 100})
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"failed": 1, "degraded": 1}
    result.stdout.fnmatch_lines(["*waiver for test_latency[[]fast] expired on 2020-01-01*"])


def test_a_waiver_protects_through_its_expiry_day_and_not_a_day_longer(
    pytester: pytest.Pytester,
) -> None:
    from datetime import date, timedelta

    today = date.today()  # the run's date; tests/test_time_of_day.py runs this at several hours
    config(
        pytester,
        f"waivers:\n  - {{check: 'test_latency[down]', justification: last day,"
        f" expires: {today}}}\n  - {{check: 'test_latency[gone]', justification: over,"
        f" expires: {today - timedelta(days=1)}}}\n",
    )
    checks(pytester, {"down": 900, "gone": 900})
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"waived": 1, "failed": 1}
    result.stdout.fnmatch_lines(
        [f"*waiver for test_latency[[]gone] expired on {today - timedelta(days=1)}*"]
    )


def test_xdist_gives_the_same_records_as_a_serial_run(pytester: pytest.Pytester) -> None:
    config(pytester)
    values = {f"t{i}": v for i, v in enumerate([100, 500, 900, 120, 310, 805])}
    checks(pytester, values)
    pytester.runpytest_subprocess()
    serial_result = pytester.runpytest_subprocess("-n", "2")
    assert serial_result.parseoutcomes() == {"passed": 2, "failed": 2, "degraded": 2}
    serial, parallel = run_dirs(pytester.path / "reports")

    def comparable(run: Path) -> Any:
        checks_ = read_record(run, "results.json")["checks"]
        for c in checks_:
            del c["duration"], c["finishedAt"]
        log = read_record(run, "maintenance-log.json")
        return checks_, log["details"], log["status"], read_record(run, "compliance.json")

    assert comparable(serial) == comparable(parallel)
    assert "Maintenance verdicts" in (parallel / "report.html").read_text()


def test_an_unconfigured_section_is_skipped_with_its_reason(pytester: pytest.Pytester) -> None:
    config(pytester)
    pytester.makepyfile(
        test_health="""
import pytest
@pytest.mark.maintcheck("health")
def test_health(health_check, assessment):
    assessment.metrics["x"] = 1
"""
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*nothing to check: no healthChecks in maintcheck.yaml*"])
    (run,) = run_dirs(pytester.path / "reports")
    log = read_record(run, "maintenance-log.json")
    assert log["status"] == "completed"  # nothing was asked of an absent section
    assert log["notConfigured"] == ["healthChecks"]


def test_absent_sections_are_listed_once_and_do_not_make_a_run_partial(
    pytester: pytest.Pytester,
) -> None:
    config(pytester)
    checks(pytester, {"fast": 100})
    pytester.makepyfile(
        test_absent="""
import pytest
@pytest.mark.maintcheck("health")
def test_health(health_check, assessment):
    assessment.metrics["x"] = 1

@pytest.mark.maintcheck("health")
def test_health_again(health_check, assessment):
    assessment.metrics["x"] = 1

@pytest.mark.maintcheck("certificate")
def test_certificate(certificate, assessment):
    assessment.metrics["x"] = 1
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, skipped=3)
    (run,) = run_dirs(pytester.path / "reports")
    log = read_record(run, "maintenance-log.json")
    assert log["status"] == "completed"
    assert log["notConfigured"] == ["certificates", "healthChecks"]
    absent = [a for a in log["details"]["actions"] if a.startswith("not configured")]
    assert absent == [
        "not configured: certificates (nothing to check)",
        "not configured: healthChecks (nothing to check)",
    ]
    page = (run / "report.html").read_text()
    assert "<h2>Not configured</h2>" in page
    assert "<code>certificates</code>, <code>healthChecks</code>" in page
    assert not [row for row in html_rows(page) if "not-configured" in " ".join(row)]


def test_a_configured_check_that_could_not_run_makes_the_run_partial(
    pytester: pytest.Pytester,
) -> None:
    config(pytester)
    checks(pytester, {"fast": 100})
    pytester.makepyfile(
        test_cannot="""
import pytest
@pytest.mark.maintcheck("slow_queries")
def test_slow_queries(assessment):
    pytest.skip("the pg_stat_statements extension is not installed in clinical")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, skipped=1)
    (run,) = run_dirs(pytester.path / "reports")
    log = read_record(run, "maintenance-log.json")
    assert log["status"] == "partial"
    assert log["notConfigured"] == []


def test_suite_markers_select_checks(pytester: pytest.Pytester) -> None:
    config(pytester)
    checks(pytester, {"fast": 100})
    pytester.makepyfile(
        test_weekly="""
import pytest
@pytest.mark.maintcheck("dead_tuples")
def test_weekly_thing(assessment):
    assessment.metrics["n"] = 0
"""
    )
    assert pytester.runpytest("-m", "daily").parseoutcomes() == {"passed": 1, "deselected": 1}
    assert pytester.runpytest("-m", "weekly").parseoutcomes() == {"passed": 1, "deselected": 1}
    assert pytester.runpytest("-m", "monthly").ret == 5
    assert "daily: a daily maintenance check" in pytester.runpytest("--markers").stdout.str()


def test_secrets_never_reach_output_or_records(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "pg-Secret-771")
    monkeypatch.setenv("DB_PASSWORD", "dsn-Secret-552")
    config(
        pytester, "databases:\n  primary: {dsn: 'postgresql://u:${DB_PASSWORD}@127.0.0.1:9/x'}\n"
    )
    pytester.makepyfile(
        test_leak="""
import os, pytest
@pytest.mark.maintcheck("health")
def test_leak(assessment, maintcheck_config):
    assessment.could_not_measure("login failed for " + maintcheck_config.databases["primary"].dsn
                                 + " with " + os.environ["PGPASSWORD"])

@pytest.mark.maintcheck("health")
def test_crash(assessment):
    raise RuntimeError("boom " + os.environ["PGPASSWORD"])
"""
    )
    result = pytester.runpytest_subprocess()
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1
    assert "login failed for postgresql://u:***@127.0.0.1:9/x with ***" in output
    (run,) = run_dirs(pytester.path / "reports")
    everything = output + "".join(p.read_text() for p in run.iterdir())
    assert "pg-Secret-771" not in everything
    assert "dsn-Secret-552" not in everything


def test_report_html_escapes_what_came_from_outside(pytester: pytest.Pytester) -> None:
    config(pytester)
    pytester.makepyfile(
        test_markup_finding="""
import pytest
from pytest_maintcheck.verdict import Verdict
@pytest.mark.maintcheck("health")
def test_hostile(assessment):
    assessment.add_finding(Verdict.DEGRADED, "server said <script>alert(1)</script>")
"""
    )
    pytester.runpytest()
    (run,) = run_dirs(pytester.path / "reports")
    html = (run / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_error_in_a_check_never_passes(pytester: pytest.Pytester) -> None:
    config(pytester)
    pytester.makepyfile(
        test_bug="""
import pytest
@pytest.mark.maintcheck("health")
def test_bug(assessment):
    raise PermissionError("permission denied for table pg_authid")
"""
    )
    result = pytester.runpytest()
    assert result.ret == 1
    (run,) = run_dirs(pytester.path / "reports")
    (check,) = read_record(run, "results.json")["checks"]
    assert check["verdict"] == "error"
    assert "permission denied for table pg_authid" in check["message"]
    assert read_record(run, "maintenance-log.json")["status"] == "partial"


def test_a_finding_may_carry_its_own_severity(pytester: pytest.Pytester) -> None:
    config(pytester)
    pytester.makepyfile(
        test_sev="""
import pytest
from pytest_maintcheck.verdict import Verdict
@pytest.mark.maintcheck("access_patterns")
def test_guessed(assessment):
    assessment.add_finding(Verdict.VIOLATION, "dr.x: success after 9 failures", severity="critical")
    assessment.add_finding(Verdict.DEGRADED, "dr.y: login at 03:10", severity="low")
"""
    )
    pytester.runpytest()
    (run,) = run_dirs(pytester.path / "reports")
    (compliance,) = read_record(run, "compliance.json")
    assert [f["severity"] for f in compliance["findings"]] == ["high", "low"]
    (incident,) = read_record(run, "incidents.json")  # the check itself is only medium
    assert incident["severity"] == "critical"
    log = read_record(run, "maintenance-log.json")
    assert log["details"]["findings"][1].startswith("[low] test_guessed")


def test_run_ids_sort_by_time_within_one_second() -> None:
    from datetime import UTC, datetime

    from pytest_maintcheck.run import new_run_id

    early = new_run_id(datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=UTC))
    late = new_run_id(datetime(2026, 1, 2, 3, 4, 5, 998000, tzinfo=UTC))
    assert early.startswith("20260102T030405.001Z-")
    assert sorted([late, early]) == [early, late]


def test_the_index_lists_every_run_newest_first(pytester: pytest.Pytester) -> None:
    config(pytester, "system: '<b>clinic</b>'\n".replace("system", "environment"))
    checks(pytester, {"down": 900})
    pytester.runpytest()
    checks(pytester, {"fast": 100})
    pytester.runpytest()
    first, second = run_dirs(pytester.path / "reports")
    index = (pytester.path / "reports" / "index.html").read_text()
    assert index.index(second.name) < index.index(first.name)
    assert f'<a href="{first.name}/report.html">' in index
    assert "&lt;b&gt;clinic&lt;/b&gt;" in index
    assert "<b>clinic</b>" not in index


def test_a_crashed_xdist_worker_leaves_a_partial_log(pytester: pytest.Pytester) -> None:
    config(pytester)
    pytester.makepyfile(
        test_crashing_check="""
import os
import pytest
@pytest.mark.maintcheck("health")
def test_kills_its_worker(assessment):
    os._exit(3)

@pytest.mark.maintcheck("health")
def test_fine(assessment):
    assessment.metrics["n"] = 1
"""
    )
    result = pytester.runpytest_subprocess("-n", "1")
    assert result.ret == 1
    log = read_record(newest_run(pytester.path / "reports"), "maintenance-log.json")
    assert log["status"] == "partial"
    assert any("test_kills_its_worker" in f and "crashed" in f for f in log["details"]["findings"])


def test_report_html_has_a_compliance_section_a_reviewer_can_read(
    pytester: pytest.Pytester,
) -> None:
    config(pytester)
    checks(pytester, {"slow": 500})
    pytester.makepyfile(
        test_backup_like="""
import pytest
from pytest_maintcheck.verdict import Verdict
@pytest.mark.maintcheck("backup_restore")
def test_restore(assessment):
    assessment.add_finding(Verdict.VIOLATION, "clinical.dump does not restore")
"""
    )
    pytester.runpytest()
    page = (newest_run(pytester.path / "reports") / "report.html").read_text()
    section = page[page.index("<h2>Compliance</h2>") :]
    badge = '</td><td><span class="badge {0}">{0}</span>'
    assert (
        "Contingency plan: data backup and recovery testing" + badge.format("violation") in section
    )
    assert "Availability and system health monitoring" + badge.format("warning") in section
    assert "HIPAA 164.308(a)(7)(ii)(A) data backup plan" in section
    assert "NIST SP 800-53 CP-9" in section


def test_the_findings_table_shows_each_findings_own_verdict_and_severity(
    pytester: pytest.Pytester,
) -> None:
    config(pytester)
    pytester.makepyfile(
        test_mixed_findings="""
import pytest
from pytest_maintcheck.verdict import Verdict
@pytest.mark.maintcheck("access_review")
def test_review(assessment):
    assessment.add_finding(Verdict.VIOLATION, "carol terminated but enabled", severity="critical")
    assessment.add_finding(Verdict.DEGRADED, "maint password never expires", severity="low")
"""
    )
    pytester.runpytest()
    page = (newest_run(pytester.path / "reports") / "report.html").read_text()
    cells = '<td><span class="badge {0}">{0}</span></td><td><span class="badge {1}">{1}</span></td>'
    low = page.index(cells.format("degraded", "low"))
    critical = page.index(cells.format("violation", "critical"))
    assert critical < low  # needs attention: violations first, critical to low
    assert page.index("carol terminated but enabled") < page.index("maint password never expires")
