"""Metric checks without Python (issue 9 point 2): one number from SQL or JSON, judged.

Real PostgreSQL for the SQL rules, the sandbox's real HTTPS API for the JSON ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from check_runs import CheckRun, run_checks
from pytest_maintcheck.config import ConfigError, load_config
from pytest_maintcheck.probes.metrics import ProbeError, resolve_pointer
from pytest_maintcheck.sandbox import SandboxApi, SandboxDatabase

UNPROCESSED = 3
COUNT_SQL = "SELECT count(*) FROM hl7_inbound WHERE processed_at IS NULL"
ESCAPE_SQL = (
    "COMMIT; SET default_transaction_read_only = off; COMMIT; "
    "INSERT INTO hl7_inbound (processed_at) VALUES (NULL)"
)


@pytest.fixture
def hl7_db(pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch) -> SandboxDatabase:
    """A database with an HL7 inbound table: 3 unprocessed messages, 2 processed."""
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE hl7_inbound (id serial PRIMARY KEY, processed_at timestamptz)")
        conn.execute(
            "INSERT INTO hl7_inbound (processed_at) VALUES (NULL), (NULL), (NULL), (now()), (now())"
        )
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    return pg_db


def sql_metric(name: str, sql: str, **extra: Any) -> dict[str, Any]:
    entry = {
        "name": name,
        "suite": "daily",
        "database": "primary",
        "sql": sql,
        "threshold": {"warn": 500, "fail": 2000},
        "direction": "higher-is-worse",
    }
    return {**entry, **extra}


def rows_unprocessed(db: SandboxDatabase) -> int:
    with db.connect() as conn:
        row = conn.execute(COUNT_SQL).fetchone()
    assert row is not None
    return int(row[0])


def verdicts(run: CheckRun) -> dict[str, str]:
    """The daily metrics' verdicts by name (weekly and monthly ones skip: none configured)."""
    return {
        c["target"]: c["verdict"]
        for c in run.check_list
        if c["name"].startswith("test_daily_metric[")
    }


def test_sql_metrics_need_exactly_one_number_from_a_read_only_transaction(
    pytester: pytest.Pytester, hl7_db: SandboxDatabase
) -> None:
    metrics = [
        sql_metric("queue-ok", COUNT_SQL, title="HL7 messages waiting"),
        sql_metric("queue-warn", COUNT_SQL, threshold={"warn": 2, "fail": 10}),
        sql_metric("queue-fail", COUNT_SQL, threshold=2, severity="critical"),
        sql_metric(
            "processed-share",
            "SELECT avg((processed_at IS NOT NULL)::int) FROM hl7_inbound",  # a numeric
            unit="ratio",
            threshold={"warn": 0.9, "fail": 0.3},
            direction="lower-is-worse",
        ),
        sql_metric("no-rows", "SELECT 1 WHERE false"),
        sql_metric("two-rows", "SELECT generate_series(1, 2)"),
        sql_metric("two-columns", "SELECT 1, 2"),
        sql_metric("text", "SELECT 'many'"),
        sql_metric("null", "SELECT NULL::int"),
        sql_metric("error", "SELECT count(*) FROM no_such_table"),
        sql_metric("write", "INSERT INTO hl7_inbound (processed_at) VALUES (NULL) RETURNING 1"),
        sql_metric("escape", ESCAPE_SQL),
        sql_metric("slow", "SELECT 1 FROM pg_sleep(5)", timeout="300ms"),
        sql_metric("weekly-only", COUNT_SQL, suite="weekly"),
    ]
    config = {"version": 1, "databases": {"primary": {"dsn": hl7_db.dsn}}, "metrics": metrics}
    run = run_checks(pytester, config, "test_metrics.py", args=["-m", "daily"])
    out = run.result.stdout.str()
    assert run.result.ret == 1, out
    assert verdicts(run) == {
        "queue-ok": "pass",
        "queue-warn": "degraded",
        "queue-fail": "violation",
        "processed-share": "degraded",
        **dict.fromkeys(
            ("no-rows", "two-rows", "two-columns", "text", "null", "error", "write", "escape"),
            "violation",
        ),
        "slow": "violation",
    }, out  # and the weekly metric is not selected by -m daily
    checks = run.checks
    assert checks["queue-ok"]["metrics"] == {"queue-ok": UNPROCESSED}
    assert checks["queue-ok"]["thresholds"]["queue-ok"]["higherIsWorse"] is True
    assert checks["processed-share"]["thresholds"]["processed-share"]["higherIsWorse"] is False
    assert "processed-share 40% (warn < 90%, fail < 30%)" in checks["processed-share"]["message"]
    assert checks["queue-fail"]["severity"] == "critical"
    assert checks["queue-fail"]["suite"] == "daily"
    assert checks["queue-fail"]["message"].startswith("VIOLATION: queue-fail 3 (fail > 2) -> ")
    assert checks["queue-ok"]["message"] == "HL7 messages waiting 3"
    reasons = {
        "no-rows": "returned no rows; it must return exactly one",
        "two-rows": "returned more than one row",
        "two-columns": "returned 2 columns",
        "text": "is str 'many', not a number",
        "null": "is NULL/null, not a number",
        "error": 'relation "no_such_table" does not exist',
        "write": "the query tried to write",
        "escape": "cannot insert multiple commands into a prepared statement",
        "slow": "did not finish within its statement timeout (0.3s)",
    }
    for name, reason in reasons.items():
        message = checks[name]["message"]
        assert message.startswith(f"VIOLATION: {name}: could not measure from SQL"), message
        assert reason in message, message
    assert rows_unprocessed(hl7_db) == UNPROCESSED  # neither the write nor the escape wrote
    compliance = {c["category"]: c for c in run.record("compliance.json")}
    availability = compliance["Availability and system health monitoring"]
    assert availability["status"] == "violation"
    assert any("test_daily_metric[queue-fail]" in f["check"] for f in availability["findings"])
    report = (run.run_dir / "report.html").read_text()
    assert "test_daily_metric[queue-warn]" in report
    assert "test_daily_metric[weekly-only]" not in report


@pytest.fixture
def stats(https_api: SandboxApi) -> Iterator[SandboxApi]:
    """The shared HTTPS API answering this test's /stats.json, put back afterwards."""
    before = https_api.stats
    https_api.stats = {
        "cache": {"hitRatio": 0.85, "entries": 1200, "a/b": {"~c": 7}},
        "queues": [{"depth": 3}],
        "label": "high",
        "nothing": None,
        "flag": True,
    }
    yield https_api
    https_api.stats = before


def http_metric(
    api: SandboxApi, name: str, path: str, pointer: str, **extra: Any
) -> dict[str, Any]:
    entry = {
        "name": name,
        "suite": "daily",
        "http": api.url(path),
        "pointer": pointer,
        "caFile": str(api.ca_file),
        "threshold": {"warn": 0.9, "fail": 0.8},
        "direction": "lower-is-worse",
        "unit": "ratio",
    }
    return {**entry, **extra}


def test_http_metrics_read_a_number_at_a_json_pointer(
    pytester: pytest.Pytester, stats: SandboxApi
) -> None:
    higher = {"threshold": {"warn": 5, "fail": 10}, "direction": "higher-is-worse"}
    metrics = [
        http_metric(stats, "cache-hits", "/stats.json", "/cache/hitRatio"),
        http_metric(stats, "queue-depth", "/stats.json", "/queues/0/depth", unit="count", **higher),
        http_metric(stats, "escaped", "/stats.json", "/cache/a~1b/~0c", unit="count", **higher),
        http_metric(stats, "missing", "/stats.json", "/cache/missRatio"),
        http_metric(stats, "past-array", "/stats.json", "/queues/1/depth"),
        http_metric(stats, "text", "/stats.json", "/label"),
        http_metric(stats, "null", "/stats.json", "/nothing"),
        http_metric(stats, "boolean", "/stats.json", "/flag"),
        http_metric(stats, "object", "/stats.json", "/cache"),
        http_metric(stats, "not-json", "/hostile", "/cache/hitRatio"),
        http_metric(stats, "http-error", "/status/503", "/x"),
        {**http_metric(stats, "untrusted", "/stats.json", "/cache/hitRatio"), "caFile": None},
        http_metric(stats, "slow", "/slow?ms=3000", "/sleptMs", timeout="300ms"),
    ]
    for entry in metrics:
        if entry["caFile"] is None:
            del entry["caFile"]
    run = run_checks(pytester, {"version": 1, "metrics": metrics}, "test_metrics.py")
    out = run.result.stdout.str()
    assert verdicts(run) == {
        "cache-hits": "degraded",
        "queue-depth": "pass",
        "escaped": "degraded",
        **dict.fromkeys(
            ("missing", "past-array", "text", "null", "boolean", "object", "not-json"),
            "violation",
        ),
        **dict.fromkeys(("http-error", "untrusted", "slow"), "violation"),
    }, out
    checks = run.checks
    assert checks["cache-hits"]["metrics"] == {"cache-hits": 0.85}
    assert "cache-hits 85% (warn < 90%, fail < 80%)" in checks["cache-hits"]["message"]
    assert checks["escaped"]["metrics"] == {"escaped": 7}
    reasons = {
        "missing": "the body has nothing at /cache/missRatio",
        "past-array": "the body has nothing at /queues/1 (an array of 1)",
        "text": "is str 'high', not a number",
        "null": "is NULL/null, not a number",
        "boolean": "is bool True, not a number",
        "object": "is dict",
        "not-json": "is not JSON (text/html",
        "http-error": "failed: HTTP 503",
        "untrusted": "TLS certificate not trusted",
        "slow": "timed out after 0.3s",
    }
    for name, reason in reasons.items():
        assert reason in checks[name]["message"], checks[name]["message"]
        assert "<script>" not in checks[name]["message"]


def test_a_waived_metric_violation_does_not_fail_the_run(
    pytester: pytest.Pytester, hl7_db: SandboxDatabase
) -> None:
    config = {
        "version": 1,
        "databases": {"primary": {"dsn": hl7_db.dsn}},
        "metrics": [sql_metric("hl7-inbound-queue", COUNT_SQL, threshold=1)],
        "waivers": [
            {
                "check": "test_daily_metric[hl7-inbound-queue]",
                "justification": "interface engine migration, CHG-77",
                "expires": "2999-12-31",
            }
        ],
    }
    run = run_checks(pytester, config, "test_metrics.py")
    assert run.result.ret == 0, run.result.stdout.str()
    check = run.checks["hl7-inbound-queue"]
    assert (check["verdict"], check["waived"]) == ("violation", True)
    assert "violation (waived)" in (run.run_dir / "report.html").read_text()


# ---------------------------------------------------------------------------- config


def load(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


BASE = "version: 1\ndatabases: {primary: {dsn: 'postgresql://m@db/x'}}\nmetrics:\n"


@pytest.mark.parametrize(
    ("entry", "line", "expected"),
    [
        (
            "  - {name: q, suite: daily, database: primary, sql: 'SELECT 1', threshold: 5, "
            "direction: higher-is-worse, treshold: 3}",
            4,
            "metrics[0].treshold: unknown key; did you mean 'threshold'?",
        ),
        (
            "  - {name: q, suite: daily, sql: 'SELECT 1', threshold: 5, "
            "direction: higher-is-worse}",
            4,
            "metrics[0].sql: sql needs database (a databases key)",
        ),
        (
            "  - {name: q, suite: daily, database: primry, sql: 'SELECT 1', threshold: 5, "
            "direction: higher-is-worse}",
            4,
            "metrics[0].database: no database named 'primry' in databases; did you mean 'primary'?",
        ),
        (
            "  - {name: q, suite: daily, database: primary, sql: 'SELECT 1', http: 'https://a/x', "
            "threshold: 5, direction: higher-is-worse}",
            4,
            "metrics[0]: give exactly one source: sql (with database) or http",
        ),
        (
            "  - {name: q, suite: daily, database: primary, sql: 'SELECT 1', pointer: /a, "
            "threshold: 5, direction: higher-is-worse}",
            4,
            "metrics[0].pointer: pointer goes with http",
        ),
        (
            "  - {name: q, suite: daily, http: 'ftp://a/x', threshold: 5, "
            "direction: higher-is-worse}",
            4,
            "metrics[0].http: expected an http(s) URL, got 'ftp://a/x'",
        ),
        (
            "  - {name: q, suite: daily, http: 'https://a/x', pointer: a, threshold: 5, "
            "direction: higher-is-worse}",
            4,
            "metrics[0].pointer: 'a' does not match",
        ),
        (
            "  - {name: q, suite: daily, http: 'https://a/x', threshold: 5}",
            4,
            "metrics[0]: 'direction' is required",
        ),
        (
            "  - name: q\n    suite: daily\n    http: 'https://a/x'\n"
            "    threshold: {warn: 0.8, fail: 0.9}\n    direction: lower-is-worse",
            7,
            "metrics[0].threshold: q: warn (0.8) must not be below fail (0.9); lower is worse",
        ),
        (
            "  - {name: q, suite: hourly, http: 'https://a/x', threshold: 5, "
            "direction: higher-is-worse}",
            4,
            "metrics[0].suite: must be one of daily, weekly, monthly, got 'hourly'",
        ),
        (
            "  - {name: q, suite: daily, http: 'https://a/x', threshold: 5, direction: up}",
            4,
            "metrics[0].direction: must be one of higher-is-worse, lower-is-worse, got 'up'",
        ),
        (
            "  - {name: q, suite: daily, http: 'https://a/x', threshold: 5, "
            "direction: higher-is-worse}\n"
            "  - {name: q, suite: weekly, http: 'https://a/y', threshold: 5, "
            "direction: higher-is-worse}",
            5,
            "metrics[1].name: 'q' is used twice; names must be unique",
        ),
    ],
)
def test_metric_entries_are_validated_with_file_line_and_key(
    tmp_path: Path, entry: str, line: int, expected: str
) -> None:
    error = load(tmp_path, BASE + entry + "\n")
    assert str(error).startswith(f"{tmp_path / 'maintcheck.yaml'}:{line}: "), str(error)
    assert expected in str(error)


def test_a_duration_metric_takes_duration_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(
        BASE + "  - {name: lag, suite: weekly, database: primary, unit: seconds, sql: 'SELECT 1', "
        "threshold: {warn: 5m, fail: 1h}, direction: higher-is-worse}\n"
    )
    metric = load_config(path).metrics[0]
    assert (metric.threshold.warn, metric.threshold.fail) == (300.0, 3600.0)
    assert metric.timeout == 30.0  # the database's statementTimeout
    assert metric.threshold.describe() == "warn > 5m, fail > 1h"


def test_every_new_schema_key_is_described() -> None:
    from pytest_maintcheck.config import schema

    defs = schema()["$defs"]
    for name in ("metric", "siteTarget"):
        for key, prop in defs[name]["properties"].items():
            assert prop.get("description"), f"{name}.{key}"
    for section in ("metrics", "siteChecks"):
        assert schema()["properties"][section]["description"]


# ---------------------------------------------------------------------------- JSON Pointer


def test_json_pointer_follows_rfc_6901() -> None:
    # the examples of RFC 6901 section 5
    doc = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5,
           "k\"l": 6, " ": 7, "m~n": 8}  # fmt: skip
    cases = {"": doc, "/foo": ["bar", "baz"], "/foo/0": "bar", "/": 0, "/a~1b": 1, "/c%d": 2,
             "/e^f": 3, "/g|h": 4, "/i\\j": 5, "/k\"l": 6, "/ ": 7, "/m~0n": 8}  # fmt: skip
    for pointer, expected in cases.items():
        assert resolve_pointer(doc, pointer) == expected, pointer
    for bad in ("/foo/01", "/foo/-", "/foo/2", "/nope", "/foo/0/x"):
        with pytest.raises(ProbeError, match="the body has nothing at"):
            resolve_pointer(doc, bad)
