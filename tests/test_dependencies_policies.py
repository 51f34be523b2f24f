"""Dependency advisories (OSV files, offline) and policy review dates, on real files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from check_runs import newest_run, read_record, run_checks
from pytest_maintcheck.probes.dependencies import (
    Pin,
    load_advisories,
    read_lockfile,
    vulnerabilities,
)
from pytest_maintcheck.probes.policies import front_matter_date, policy_status


def osv(ident: str, name: str, **affected: Any) -> dict[str, Any]:
    return {"id": ident, "affected": [{"package": {"ecosystem": "PyPI", "name": name}, **affected}]}


def ranges(*events: dict[str, str]) -> list[dict[str, Any]]:
    return [{"type": "ECOSYSTEM", "events": list(events)}]


# ---------------------------------------------------------------------------- lockfiles


def test_requirements_pins_with_extras_markers_hashes_and_continuations(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(
        "# generated\n"
        "--index-url https://pypi.org/simple\n"
        "Requests[socks]==2.19.0 ; python_version >= '3.8'  # via app\n"
        "zope.interface==6.0 \\\n"
        "    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
        "flask>=2.0\n"
        "-e ./local-package\n"
        "legacy===1.0-custom\n"
    )
    lock = read_lockfile(path)
    assert lock.pins == [
        Pin("Requests", "2.19.0"),
        Pin("zope.interface", "6.0"),
        Pin("legacy", "1.0-custom"),
    ]
    assert lock.unpinned == ["flask", "-e ./local-package"]


def test_poetry_uv_and_pipfile_locks(tmp_path: Path) -> None:
    package = '[[package]]\nname = "Django"\nversion = "4.2.1"\n'
    for name in ("poetry.lock", "uv.lock"):
        (tmp_path / name).write_text(package + '\n[[package]]\nname = "app"\nsource = {}\n')
        assert read_lockfile(tmp_path / name).pins == [Pin("Django", "4.2.1")]
    (tmp_path / "Pipfile.lock").write_text(
        json.dumps({"default": {"django": {"version": "==4.2.1"}}, "develop": {"x": {}}})
    )
    lock = read_lockfile(tmp_path / "Pipfile.lock")
    assert lock.pins == [Pin("django", "4.2.1")]
    assert lock.unpinned == ["x"]


# ---------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("version", "affected", "fixed"),
    [
        ("2.19.0", True, "2.20.0"),
        ("2.20.0", False, None),
        ("1.0", False, None),  # before introduced
        ("3.1", True, "3.2"),  # second range of the same advisory
        ("3.2.0", False, None),
    ],
)
def test_ecosystem_ranges_are_compared_with_packaging(
    version: str, affected: bool, fixed: str | None
) -> None:
    advisory = osv("GHSA-1", "requests")  # two ranges: 2.0 to 2.20.0, 3.0 to 3.2
    advisory["affected"][0]["ranges"] = ranges({"introduced": "2.0"}, {"fixed": "2.20.0"}) + ranges(
        {"introduced": "3.0"}, {"fixed": "3.2"}
    )
    found = vulnerabilities([Pin("requests", version)], [advisory])
    assert bool(found) is affected
    if found:
        assert found[0].fixed == fixed


def test_last_affected_explicit_versions_and_pep503_names() -> None:
    last = osv(
        "OSV-2", "Zope_Interface", ranges=ranges({"introduced": "0"}, {"last_affected": "5.4"})
    )
    listed = osv("OSV-3", "pillow", versions=["9.0.0", "9.0.1"])
    other = {**osv("OSV-4", "pillow", versions=["9.0.1"])}
    other["affected"][0]["package"]["ecosystem"] = "npm"
    pins = [Pin("zope.interface", "5.4"), Pin("zope-interface", "5.5"), Pin("Pillow", "9.0.1")]
    found = {(v.package, v.advisory) for v in vulnerabilities(pins, [last, listed, other])}
    assert found == {("zope.interface", "OSV-2"), ("Pillow", "OSV-3")}


def test_advisory_folder_skips_withdrawn_and_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "PyPI").mkdir()
    (tmp_path / "PyPI" / "a.json").write_text(json.dumps(osv("A", "x", versions=["1"])))
    withdrawn = {**osv("B", "x", versions=["1"]), "withdrawn": "2024-01-01T00:00:00Z"}
    (tmp_path / "b.json").write_text(json.dumps(withdrawn))
    (tmp_path / "broken.json").write_text("{not json")
    found = load_advisories(tmp_path)
    assert [a["id"] for a in found.items] == ["A"]
    assert found.withdrawn == 1
    assert found.problems[0].startswith("broken.json: not readable OSV JSON")


def write_project(base: Path, requirements: str, *advisories: dict[str, Any]) -> None:
    (base / "requirements.txt").write_text(requirements)
    folder = base / "advisories"
    folder.mkdir(exist_ok=True)
    for advisory in advisories:
        (folder / f"{advisory['id']}.json").write_text(json.dumps(advisory))


def run_monthly(
    pytester: pytest.Pytester, section: str, entries: list[dict[str, Any]], test: str
) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    run = run_checks(
        pytester, {"version": 1, section: entries}, f"test_monthly_security.py::{test}"
    )
    return run.result, run.checks


def test_dependency_findings_end_to_end(pytester: pytest.Pytester) -> None:
    high = osv(
        "GHSA-x84v-xcm2-53pg", "requests", ranges=ranges({"introduced": "0"}, {"fixed": "2.20.0"})
    )
    high.update(aliases=["CVE-2018-18074"], summary="Leaks Proxy-Authorization",
                database_specific={"severity": "HIGH"})  # fmt: skip
    low = osv("PYSEC-1", "packaging", versions=["24.1"])
    low["database_specific"] = {"severity": "LOW"}
    moderate = osv("GHSA-MOD", "jinja2", versions=["2.10"])
    moderate["database_specific"] = {"severity": "MODERATE"}
    critical = osv("GHSA-CRIT", "pyyaml", versions=["5.3"])
    critical["database_specific"] = {"severity": "CRITICAL"}
    cvss = osv("OSV-NOFIX", "psycopg", ranges=ranges({"introduced": "3.0"}))
    cvss["severity"] = [
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}
    ]
    write_project(
        pytester.path,
        "requests==2.19.0\npackaging==24.1\npsycopg==3.2.3\nurllib3>=1.26\n"
        "jinja2==2.10\npyyaml==5.3\n",
        high,
        low,
        cvss,
        moderate,
        critical,
    )
    (pytester.path / "clean").mkdir()
    (pytester.path / "empty").mkdir()
    write_project(pytester.path / "clean", "requests==2.32.3\n", high)
    entries = [
        {"name": "backend", "lockfile": "requirements.txt", "advisories": "advisories"},
        {"name": "clean", "lockfile": "clean/requirements.txt", "advisories": "clean/advisories"},
        {"name": "no-db", "lockfile": "requirements.txt", "advisories": "empty"},
    ]
    result, checks = run_monthly(pytester, "dependencies", entries, "test_dependencies")
    result.assert_outcomes(passed=1, failed=2)
    backend = checks["backend"]
    by_text = {f["description"]: f for f in backend["findings"]}
    requests = next(f for d, f in by_text.items() if "requests 2.19.0" in d)
    assert requests["verdict"] == "violation"
    assert "GHSA-x84v-xcm2-53pg (CVE-2018-18074), severity HIGH" in requests["description"]
    assert requests["action"] == "Upgrade requests to 2.20.0 or later."
    packaging_low = next(f for d, f in by_text.items() if "packaging 24.1" in d)
    assert packaging_low["verdict"] == "degraded"  # LOW severity is a warning
    nofix = next(f for d, f in by_text.items() if "psycopg 3.2.3" in d)
    assert "severity CVSS_V3 CVSS:3.1/AV:N" in nofix["description"]
    assert nofix["action"].startswith("No fixed version is published")
    unpinned = next(f for d, f in by_text.items() if "not pinned" in d)
    assert "urllib3" in unpinned["description"]
    # the advisory's own severity is the finding's (MODERATE is medium); a CVSS vector alone
    # is not scored, so that finding keeps the check's severity (no severity of its own)
    own = {f["description"].split(" ")[1]: f.get("severity") for f in backend["findings"]}
    assert own == {
        "requests": "high",
        "packaging": "low",
        "jinja2": "medium",
        "pyyaml": "critical",
        "psycopg": None,
        "1": None,  # "backend: 1 requirement(s) not pinned ..."
    }
    assert by_text[next(d for d in by_text if "jinja2 2.10" in d)]["verdict"] == "violation"
    # compliance.json shows them on its three levels (critical as high, none: the check's high)
    run = newest_run(pytester.path / "reports")
    patching = [
        f
        for c in read_record(run, "compliance.json")
        for f in c["findings"]
        if f["check"] == backend["nodeid"]
    ]
    shown = {f["description"].split(" ")[2]: f["severity"] for f in patching}
    assert shown == {
        "requests": "high",
        "packaging": "low",
        "jinja2": "medium",
        "pyyaml": "high",
        "psycopg": "high",
        "1": "high",
    }
    assert backend["metrics"] == {"packages": 5, "vulnerable": 5}
    assert {v["advisory"] for v in backend["details"]["vulnerabilities"]} == {
        "GHSA-x84v-xcm2-53pg",
        "PYSEC-1",
        "OSV-NOFIX",
        "GHSA-MOD",
        "GHSA-CRIT",
    }
    assert checks["clean"]["verdict"] == "pass"
    assert checks["clean"]["findings"] == []
    # an empty advisory folder would pass everything: it must not
    assert "no OSV advisories found" in checks["no-db"]["findings"][0]["description"]


# ---------------------------------------------------------------------------- policies


def test_front_matter_dates() -> None:
    assert front_matter_date("---\ntitle: x\nlast_reviewed: '2025-03-01'\n---\nbody") == (
        date(2025, 3, 1),
        None,
    )
    assert front_matter_date("# no front matter\nlast_reviewed: 2025-03-01\n")[0] is None
    assert front_matter_date("---\nlast_reviewed: soon\n---\n")[1] == (
        "last_reviewed 'soon' is not a date"
    )


def test_the_config_date_wins_over_the_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text("---\nlast_reviewed: 2020-01-01\n---\n")
    status = policy_status(path, date(2026, 1, 1))
    assert (status.last_reviewed, status.source) == (date(2026, 1, 1), "config")
    assert policy_status(path, None).source == "front matter"


def test_policy_findings_end_to_end(pytester: pytest.Pytester) -> None:
    today = datetime.now(UTC).date()

    def policy(name: str, reviewed: date | None, **extra: Any) -> dict[str, Any]:
        text = f"---\nlast_reviewed: {reviewed}\n---\n" if reviewed else "# no date\n"
        (pytester.path / f"{name}.md").write_text(text)
        return {"name": name, "file": f"{name}.md", "reviewEvery": "365d", **extra}

    entries = [
        policy("overdue", today - timedelta(days=400)),
        policy("due-soon", today - timedelta(days=350)),
        policy("current", today - timedelta(days=10)),
        policy("undated", None),
        policy("dated-in-config", None, lastReviewed=str(today - timedelta(days=5))),
        {"name": "missing", "file": "missing.md", "reviewEvery": "365d"},
    ]
    result, checks = run_monthly(pytester, "policies", entries, "test_policy")
    result.assert_outcomes(passed=2, failed=3)  # due-soon is degraded: its own category
    overdue = checks["overdue"]
    assert overdue["verdict"] == "violation"
    assert (
        "time since policy review 400d (warn > 335d, fail > 365d)"
        in (overdue["findings"][0]["description"])
    )
    assert checks["due-soon"]["verdict"] == "degraded"
    assert checks["current"]["verdict"] == "pass"
    assert checks["current"]["details"]["nextDue"] == str(today + timedelta(days=355))
    assert checks["dated-in-config"]["verdict"] == "pass"
    assert checks["dated-in-config"]["details"]["dateFrom"] == "config"
    undated = checks["undated"]
    assert undated["verdict"] == "violation"
    assert "no review date (the file has no front matter" in undated["findings"][0]["description"]
    missing = checks["missing"]
    assert missing["verdict"] == "violation"
    assert "does not exist" in missing["findings"][0]["description"]
