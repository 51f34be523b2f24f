"""What the plugin skips for speed changes nothing a user sees: the assessment fixture (made
without ``request``) and the report.html rows pytest-html never shows (built without cells)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from check_runs import newest_run, read_record

pytest_plugins = ["pytester"]


def html_tests(page: str) -> dict[str, list[dict[str, Any]]]:
    """pytest-html 4's rows, keyed by nodeid, from the JSON it keeps in the page."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob is not None
    tests: dict[str, list[dict[str, Any]]] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


def test_the_assessment_fixture_belongs_to_the_running_check(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", maintcheck="version: 1\nsystem: test system\n")
    pytester.makepyfile(
        test_fixture="""
import pytest
from pytest_maintcheck.verdict import Verdict

@pytest.mark.maintcheck("health")
def test_first(assessment):
    assessment.add_finding(Verdict.DEGRADED, "first only", "look at the first")

@pytest.mark.maintcheck("health")
def test_asked_for_late(request):
    request.getfixturevalue("assessment").metrics["late"] = 1

def test_not_a_check(assessment):
    pass
"""
    )
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"passed": 1, "degraded": 1, "errors": 1}
    result.stdout.fnmatch_lines(["*the assessment fixture is for @pytest.mark.maintcheck checks*"])
    checks = {
        c["name"]: c
        for c in read_record(newest_run(pytester.path / "reports"), "results.json")["checks"]
    }
    assert [f["description"] for f in checks["test_first"]["findings"]] == ["first only"]
    assert checks["test_asked_for_late"]["findings"] == []
    assert checks["test_asked_for_late"]["metrics"] == {"late": 1}


def test_report_html_keeps_teardown_output_and_failed_phases(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", maintcheck="version: 1\nsystem: test system\n")
    pytester.makepyfile(
        test_rows="""
import pytest
from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold("responseTime", warn=1000.0, fail=5000.0)

@pytest.fixture
def noisy():
    print("said in setup")
    yield
    print("said in teardown")

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

@pytest.mark.maintcheck("health")
def test_noisy(assessment, noisy):
    assessment.measure(LIMIT, 5.0)

@pytest.mark.maintcheck("health")
def test_quiet(assessment):
    assessment.measure(LIMIT, 5.0)

@pytest.mark.maintcheck("health")
def test_setup_fails(broken_setup, assessment):
    pass

@pytest.mark.maintcheck("health")
def test_teardown_fails(assessment, broken_teardown):
    assessment.measure(LIMIT, 5.0)
"""
    )
    pytester.runpytest()
    tests = html_tests((newest_run(pytester.path / "reports") / "report.html").read_text())
    rows = {nodeid.split("::")[-1]: entries for nodeid, entries in tests.items()}
    assert [r["testId"].split("::")[-1] for r in rows["test_quiet"]] == ["test_quiet"]
    (noisy,) = rows["test_noisy"]
    assert "said in setup" in noisy["log"]
    assert "said in teardown" in noisy["log"]
    assert [r["testId"].split("::")[-1] for r in rows["test_setup_fails"]] == ["setup"]
    assert [r["testId"].split("::")[-1] for r in rows["test_teardown_fails"]] == [
        "test_teardown_fails",
        "teardown",
    ]
    assert [r["verdict"] for r in rows["test_teardown_fails"]] == ["pass", "error"]
