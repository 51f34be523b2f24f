"""Issue 16: the plugin installed beside other test suites and other pytest plugins.

Every run here is a real pytest run (pytester); runs with other plugins or xdist are
subprocesses, so those plugins never load into this session.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from check_runs import CHECKS, newest_run, read_record, run_dirs
from pytest_maintcheck.sandbox import SandboxApi
from pytest_maintcheck.targets import TARGETS

# a project's own suite: fixtures named like every kind of maintenance target, like the
# plugin's own fixtures, and its own parametrize over one of those names
PROJECT_CONFTEST = "import pytest\n" + "".join(
    f"\n@pytest.fixture\ndef {name}():\n    return 'project {name}'\n"
    for name in [*TARGETS, "assessment", "health_fleet"]
)
PROJECT_TESTS = f"""
import pytest

NAMES = {[*TARGETS, "assessment", "health_fleet"]!r}

def test_own_fixtures(request):
    for name in NAMES:
        assert request.getfixturevalue(name) == "project " + name

def test_backup(backup, policy, certificate, assessment, health_fleet):
    assert (backup, policy, certificate) == ("project backup", "project policy",
                                             "project certificate")
    assert (assessment, health_fleet) == ("project assessment", "project health_fleet")

@pytest.mark.parametrize("dependency", ["numpy", "scipy"])
def test_dependency(dependency):
    assert dependency in ("numpy", "scipy")
"""

LATENCY_CHECK = """
import pytest
from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold.parse("responseTime", {{"warn": 300, "fail": 800}})

@pytest.mark.maintcheck("health")
@pytest.mark.parametrize("value", {values!r}, ids={ids!r})
def test_latency(value, assessment):
    assessment.measure(LIMIT, value, subject="clinical-api")
"""


def latency_checks(pytester: pytest.Pytester, values: dict[str, int], name: str) -> None:
    pytester.makepyfile(
        **{name: LATENCY_CHECK.format(values=list(values.values()), ids=list(values))}
    )


def write_config(pytester: pytest.Pytester, extra: str = "") -> Path:
    return pytester.makefile(".yaml", maintcheck="version: 1\nsystem: test system\n" + extra)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its mtime and size, pytester's and pytest's own left out."""
    skipped = {"__pycache__", ".pytest_cache", "stdout", "stderr"}
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if not skipped & set(p.parts) and not p.relative_to(root).parts[0].startswith("runpytest-")
    }


def html_columns(page: str) -> list[str]:
    """The results table's column titles pytest-html wrote into its page."""
    head = page[page.index('id="results-table-head"') :]
    head = head[: head.index("</thead>")]
    return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th.*?</th>", head)]


def comparable(run: Path, drop: tuple[str, ...] = ()) -> Any:
    """A run's records without what differs between any two runs (times, durations, ids)."""
    checks = read_record(run, "results.json")["checks"]
    for c in checks:
        del c["duration"], c["finishedAt"]
        for key in drop:
            c.pop(key, None)
    log = read_record(run, "maintenance-log.json")
    compliance = read_record(run, "compliance.json")
    incidents = read_record(run, "incidents.json")
    for i in incidents:
        i.pop("id", None)
        i.pop("timeline", None)
        i.pop("lastSeen", None)
        # when the public update and each update were written (issue 12): times of the run
        for update in [i.get("publicUpdate") or {}, *i.get("updates", [])]:
            update.pop("at", None)
    return checks, log["details"], log["status"], log["counts"], compliance, incidents


# ---------------------------------------------------------------------------- point 1 and 2


def test_a_project_without_config_keeps_its_fixtures_folders_and_html(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.makepyfile(test_project=PROJECT_TESTS)
    (pytester.path / "reports").mkdir()  # the project's own, empty
    before = tree(pytester.path)
    result = pytester.runpytest_subprocess("--html=own/page.html", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "no-config" not in out
    assert "test_dependency[numpy] PASSED" in out
    assert "maintcheck records" not in out
    assert "maintcheck findings" not in out
    after = tree(pytester.path)
    assert {k: v for k, v in after.items() if not k.startswith(("own", "assets"))} == before
    assert (pytester.path / "reports").is_dir()  # not deleted
    assert html_columns((pytester.path / "own/page.html").read_text()) == [
        "Result",
        "Test",
        "Duration",
        "Links",
    ]


def test_with_a_config_only_checks_are_parametrized(pytester: pytest.Pytester) -> None:
    # the project's suite in tests/, its own maintenance check beside it in checks/
    pytester.makepyfile(**{"tests/conftest": PROJECT_CONFTEST, "tests/test_project": PROJECT_TESTS})
    write_config(pytester, "policies:\n  - {name: privacy, file: privacy.md, reviewEvery: 365d}\n")
    pytester.makepyfile(
        **{
            "checks/test_check": """
import pytest
@pytest.mark.maintcheck("policies")
def test_policy(policy, assessment):
    assessment.metrics["name"] = policy.name
"""
        }
    )
    result = pytester.runpytest_subprocess("-v", "--html=own.html")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*checks/test_check.py::test_policy[[]privacy] PASSED*"])
    result.assert_outcomes(passed=5)
    (run,) = run_dirs(pytester.path / "reports")
    (check,) = read_record(run, "results.json")["checks"]
    assert check["metrics"] == {"name": "privacy"}
    # the project's own page keeps its own columns beside the checks'
    assert html_columns((pytester.path / "own.html").read_text())[:3] == [
        "Result",
        "Verdict",
        "Severity",
    ]


def test_with_a_config_a_run_without_checks_leaves_reports_and_html_alone(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    (pytester.path / "reports").mkdir()
    before = tree(pytester.path)
    result = pytester.runpytest_subprocess("--html=own.html")
    assert result.ret == 0
    after = tree(pytester.path)
    assert {k: v for k, v in after.items() if not k.startswith(("own", "assets"))} == before
    assert (pytester.path / "reports").is_dir()
    columns = html_columns((pytester.path / "own.html").read_text())
    assert "Verdict" not in columns
    assert "Severity" not in columns


# ---------------------------------------------------------------------------- point 5, issue 8.26


@pytest.mark.parametrize(
    "args",
    [
        ["--collect-only"],
        ["--co", "-q"],
        ["--setup-plan"],
        ["--setup-only"],
        ["--help"],
        ["--markers"],
        ["--fixtures"],
    ],
    ids=lambda a: a[0],
)
def test_runs_that_execute_no_check_write_and_link_nothing(
    pytester: pytest.Pytester, http_api: SandboxApi, args: list[str]
) -> None:
    write_config(
        pytester,
        f"healthChecks:\n  - {{service: api, type: api, endpoint: '{http_api.url('/health')}',"
        " samples: 3}\n",
    )
    pytester.makepyfile(
        test_health=(CHECKS / "test_daily_health.py").read_text(),
        test_fast=LATENCY_CHECK.format(values=[100], ids=["fast"]),
    )
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    out = result.stdout.str()
    assert "maintcheck records" not in out
    assert "Generated html report" not in out
    assert not (pytester.path / "reports").exists()
    assert http_api.request_count == 0  # --setup-only makes fixtures: none probes the fleet


def test_help_and_markers_work_beside_a_broken_config(pytester: pytest.Pytester) -> None:
    write_config(pytester, "bogus: 1\n")
    for args in (["--help"], ["--markers"]):
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == 0, result.stderr.str()
        assert "maintcheck config error" not in result.stderr.str()
    assert pytester.runpytest_subprocess("--co").ret == 4  # collecting needs the config


def test_a_run_stopped_by_collection_errors_probes_nothing(
    pytester: pytest.Pytester, http_api: SandboxApi
) -> None:
    write_config(
        pytester,
        f"healthChecks:\n  - {{service: api, type: api, endpoint: '{http_api.url('/health')}'}}\n",
    )
    pytester.makepyfile(
        test_health=(CHECKS / "test_daily_health.py").read_text(), test_broken="def oops(:\n"
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert http_api.request_count == 0


# ---------------------------------------------------------------------------- point 3


FLAKY_CHECK = """
import pytest
from pathlib import Path
from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold.parse("responseTime", {"warn": 300, "fail": 800})

@pytest.mark.maintcheck("health")
def test_flaky(assessment):
    tries = Path("tries")
    tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
    assessment.measure(LIMIT, 900 if tries.read_text() == "x" else 100, subject="clinical-api")
"""


def test_a_check_passing_on_rerun_is_recorded_as_passed_and_rerun(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester)
    pytester.makepyfile(test_flaky=FLAKY_CHECK)
    result = pytester.runpytest_subprocess("--reruns", "1")
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    run = newest_run(pytester.path / "reports")
    (check,) = read_record(run, "results.json")["checks"]
    assert check["verdict"] == "pass"
    assert check["reruns"] == 1
    assert check["findings"] == []
    (compliance,) = read_record(run, "compliance.json")
    assert compliance["status"] == "compliant"
    assert read_record(run, "maintenance-log.json")["details"]["findings"] == []
    assert read_record(run, "incidents.json") == []
    # the report's verdict tiles (issue 11) show every verdict with its count
    page = (run / "report.html").read_text()
    tiles = dict(re.findall(r'data-verdict="(\w+)"><b>(\d+)</b>', page))
    assert tiles["pass"] == "1"
    assert tiles["violation"] == tiles["degraded"] == tiles["error"] == "0"


# ---------------------------------------------------------------------------- point 4


def health_config(api: SandboxApi, samples: tuple[int, int] = (1, 1)) -> str:
    return (
        "healthChecks:\n"
        f"  - {{service: fast, type: api, endpoint: '{api.url('/health')}',"
        f" samples: {samples[0]}, timeout: 10s}}\n"
        f"  - {{service: slow, type: api, endpoint: '{api.url('/slow?ms=2500')}',"
        f" samples: {samples[1]}, timeout: 10s,"
        " thresholds: {responseTime: {warn: 300, fail: 1000}}}\n"
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_slow_endpoint_does_not_time_out_the_whole_fleet(
    pytester: pytest.Pytester, http_api: SandboxApi, workers: list[str]
) -> None:
    write_config(pytester, health_config(http_api))
    pytester.makepyfile(test_health=(CHECKS / "test_daily_health.py").read_text())
    result = pytester.runpytest_subprocess("--timeout=2", *workers)
    run = newest_run(pytester.path / "reports", result.stdout.str())
    status = {h["service"]: h["status"] for h in read_record(run, "health.json")}
    assert status == {"fast": "healthy", "slow": "down"}, result.stdout.str()
    # an incident names its check by catalogue key and target (issue 12), the nodeid beside
    assert [(i["check"], i["target"]) for i in read_record(run, "incidents.json")] == [
        ("health", "slow")
    ]
    assert "Timeout" not in result.stdout.str()


HANGING_CHECKS = """
import time
import pytest

@pytest.mark.maintcheck("health")
def test_a_fine(assessment):
    assessment.metrics["n"] = 1

@pytest.mark.maintcheck("health")
def test_b_hangs(assessment):
    time.sleep(30)
"""


def test_a_thread_method_timeout_still_writes_the_records(pytester: pytest.Pytester) -> None:
    write_config(pytester)
    pytester.makepyfile(test_hang=HANGING_CHECKS)
    result = pytester.runpytest_subprocess("--timeout=1", "--timeout-method=thread")
    assert result.ret == 1
    reports = pytester.path / "reports"
    run = newest_run(reports, result.stdout.str())
    assert f"maintcheck records: {run}" in result.stdout.str()
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]
    checks = {c["name"]: c for c in read_record(run, "results.json")["checks"]}
    assert checks["test_a_fine"]["verdict"] == "pass"
    assert checks["test_b_hangs"]["verdict"] == "error"
    assert "Timeout (>1s) from pytest-timeout" in checks["test_b_hangs"]["message"]
    assert read_record(run, "maintenance-log.json")["status"] == "failed"


def test_a_thread_method_timeout_under_xdist_counts_the_check(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester)
    pytester.makepyfile(test_hang=HANGING_CHECKS)
    result = pytester.runpytest_subprocess(
        "--timeout=1", "--timeout-method=thread", "-n", "2", "--max-worker-restart=1"
    )
    assert result.ret == 1
    run = newest_run(pytester.path / "reports", result.stdout.str())
    record = read_record(run, "results.json")
    hung = next(c for c in record["checks"] if c["name"] == "test_b_hangs")
    assert hung["verdict"] == "error"
    assert "crashed" in hung["message"]
    assert record["counts"]["error"] == 1
    assert record["counts"]["pass"] == 1
    assert [h["status"] for h in read_record(run, "health.json")].count("down") == 1
    (incident,) = read_record(run, "incidents.json")
    assert incident["check"] == "health"  # the catalogue key (issue 12)
    assert incident["nodeid"] == "test_hang.py::test_b_hangs"
    log = read_record(run, "maintenance-log.json")
    assert sum("test_b_hangs" in f for f in log["details"]["findings"]) == 1


# ---------------------------------------------------------------------------- issue 15.2


@pytest.mark.parametrize("dist", ["load", "loadfile", "loadscope", "worksteal"])
def test_the_fleet_is_probed_once_whatever_the_number_of_workers(
    pytester: pytest.Pytester, http_api: SandboxApi, dist: str
) -> None:
    write_config(
        pytester,
        "healthChecks:\n"
        f"  - {{service: one, type: api, endpoint: '{http_api.url('/health')}', samples: 3}}\n"
        f"  - {{service: two, type: api, endpoint: '{http_api.url('/health?b')}', samples: 4}}\n",
    )
    # the health check in two files: loadfile (and often the others) gives each worker one,
    # and each worker's session holds the whole selected fleet
    health = (CHECKS / "test_daily_health.py").read_text()
    pytester.makepyfile(
        test_health_a=health, test_health_b=health.replace("test_health(", "test_health_b(")
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", dist)
    assert result.parseoutcomes() == {"passed": 4}, result.stdout.str()
    assert http_api.request_count == 3 + 4
    run = newest_run(pytester.path / "reports")
    samples = {
        c["name"]: c["metrics"]["samples"] for c in read_record(run, "results.json")["checks"]
    }
    assert samples == {
        "test_health[one]": 3,
        "test_health[two]": 4,
        "test_health_b[one]": 3,
        "test_health_b[two]": 4,
    }


# ---------------------------------------------------------------------------- same records


@pytest.mark.parametrize(
    "args",
    [
        ["-n", "2"],
        ["-n", "2", "--dist", "loadscope"],
        ["-n", "2", "--dist", "loadfile"],
        ["-n", "2", "--dist", "worksteal"],
        ["-p", "randomly"],
        ["--reruns", "2"],
        ["--timeout", "60"],
        ["--timeout", "60", "--timeout-method", "thread"],
    ],
    ids=" ".join,
)
def test_other_plugins_give_the_records_of_a_serial_run(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    write_config(pytester)
    latency_checks(pytester, {"fast": 100, "slow": 500, "down": 900}, "test_one")
    latency_checks(pytester, {"ok": 120, "warm": 310, "gone": 805}, "test_two")
    # each run its own report folder: incidents (occurrences), the chain and the history
    # store carry over between runs of one folder by design (issue 12), and the other
    # plugin must give the records of a first serial run, not of a second one
    pytester.runpytest_subprocess("--maintcheck-report-dir=serial")
    result = pytester.runpytest_subprocess("--maintcheck-report-dir=other", *args)
    rerun = "--reruns" in args
    out = result.stdout.str()
    assert "randomly-seed" in out if "randomly" in args else "randomly-seed" not in out
    if "--timeout" in args:
        assert "timeout: 60.0s" in out
    outcomes = result.parseoutcomes()
    outcomes.pop("rerun", None)
    assert outcomes == {"passed": 2, "failed": 2, "degraded": 2}, result.stdout.str()
    (serial,) = run_dirs(pytester.path / "serial")
    (other,) = run_dirs(pytester.path / "other")
    if rerun:  # the records say which checks were run again, and how often
        checks = read_record(other, "results.json")["checks"]
        assert {c["target"]: c.get("reruns", 0) for c in checks} == {
            "fast": 0, "slow": 0, "down": 2, "ok": 0, "warm": 0, "gone": 2
        }  # fmt: skip
    assert comparable(serial) == comparable(other, drop=("reruns",))


# ---------------------------------------------------------------------------- point 6


@pytest.mark.parametrize("spelling", ["space", "equals"])
def test_options_written_with_a_space_keep_the_rootdir(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, spelling: str
) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["checks"]\n')
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    config = elsewhere / "ops.yaml"
    config.write_text("version: 1\nsystem: test system\n")
    reports = elsewhere / "out"
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "test_check.py").write_text(
        LATENCY_CHECK.format(values=[500], ids=["slow"])
    )
    pytester.makepyfile(**{"tests/test_unrelated": "def test_fails():\n    assert False\n"})
    options = {
        "--maintcheck-config": str(config),
        "--maintcheck-report-dir": str(reports),
        "--maintcheck-fail-on": "warning",
        "--maintcheck-type": "emergency",
    }
    args = [
        part
        for name, value in options.items()
        for part in ([name, value] if spelling == "space" else [f"{name}={value}"])
    ]
    for _ in range(2):  # the second run finds the folders the first one made
        result = pytester.runpytest_subprocess(*args, "--maintcheck-apply")
        out = result.stdout.str()
        assert f"rootdir: {pytester.path}" in out, out + result.stderr.str()
        assert result.parseoutcomes() == {"failed": 1}  # degraded fails the warning gate
    _first, second = run_dirs(reports)
    assert read_record(second, "maintenance-log.json")["type"] == "emergency"
    assert "test_unrelated" not in out


# ---------------------------------------------------------------------------- point 7


@pytest.mark.parametrize("tb", ["native", "short", "line", "long"])
def test_recorded_messages_are_whole_whatever_the_traceback_style(
    pytester: pytest.Pytester, tb: str
) -> None:
    write_config(pytester)
    pytester.makepyfile(
        test_bug="""
import pytest
@pytest.mark.maintcheck("health")
def test_bug(assessment):
    raise PermissionError("permission denied for table pg_authid")
"""
    )
    pytester.runpytest(f"--tb={tb}")
    (check,) = read_record(newest_run(pytester.path / "reports"), "results.json")["checks"]
    assert "PermissionError: permission denied for table pg_authid" in check["message"]


# ---------------------------------------------------------------------------- point 8


def test_degraded_checks_are_counted_when_pytest_sugar_owns_the_status_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")  # pytest-sugar on
    write_config(pytester)
    latency_checks(pytester, {"fast": 100, "slow": 500, "slower": 600}, "test_checks")
    result = pytester.runpytest_subprocess()
    out = result.stdout.str()
    assert "sugar" in out  # it really ran
    assert "maintcheck: 1 pass, 2 degraded" in out


# ---------------------------------------------------------------------------- issue 8.23


def test_junit_xml_fails_a_degraded_check_that_fails_the_gate(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester)
    latency_checks(pytester, {"fast": 100, "slow": 500}, "test_checks")
    result = pytester.runpytest("--maintcheck-fail-on=warning", "--junitxml=gate.xml")
    assert result.ret == 1
    suite = ET.parse(pytester.path / "gate.xml").getroot().find("testsuite")  # noqa: S314
    assert suite is not None
    assert suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["test_latency[slow]"].find("failure") is not None
    assert cases["test_latency[fast]"].find("failure") is None
    props = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}
        for name, case in cases.items()
    }
    assert props == {
        "test_latency[fast]": {"verdict": "pass", "severity": "high"},
        "test_latency[slow]": {"verdict": "degraded", "severity": "high"},
    }
    (run,) = run_dirs(pytester.path / "reports")
    verdicts = {c["target"]: c["verdict"] for c in read_record(run, "results.json")["checks"]}
    assert verdicts == {"fast": "pass", "slow": "degraded"}  # the record keeps the verdict


def test_junit_xml_without_the_warning_gate_keeps_degraded_a_pass(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester)
    latency_checks(pytester, {"slow": 500}, "test_checks")
    result = pytester.runpytest("--junitxml=gate.xml")
    assert result.ret == 0
    suite = ET.parse(pytester.path / "gate.xml").getroot().find("testsuite")  # noqa: S314
    assert suite is not None
    assert suite.get("failures") == "0"
    assert json.dumps({p.get("name"): p.get("value") for p in suite.iter("property")}) == (
        '{"verdict": "degraded", "severity": "high"}'
    )
