"""The access review against real PostgreSQL roles and real export/roster files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from check_runs import read_record, run_checks
from pytest_maintcheck.probes.access import file_accounts, postgres_accounts, read_roster
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase


@pytest.fixture
def roles(pg_cluster: PostgresCluster) -> Iterator[dict[str, str]]:
    """Uniquely named roles in the shared cluster (roles are cluster-wide), dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    names = {
        k: f"{k}_{tag}"
        for k in ("leaver", "stranger", "root", "admins", "ops", "opsuser", "approved", "expiring")
    }
    with pg_cluster.connect() as conn:
        for key in ("leaver", "stranger", "opsuser", "approved"):
            conn.execute(f"CREATE ROLE {names[key]} LOGIN PASSWORD 'x-{tag}'")
        conn.execute(f"CREATE ROLE {names['root']} LOGIN SUPERUSER")
        conn.execute(f"CREATE ROLE {names['admins']} NOLOGIN")
        conn.execute(f"CREATE ROLE {names['ops']} NOLOGIN")
        conn.execute(f"GRANT {names['admins']} TO {names['ops']}")  # admins reached via ops
        conn.execute(f"GRANT {names['ops']} TO {names['opsuser']}")
        conn.execute(f"GRANT {names['admins']} TO {names['approved']}")
        conn.execute(f"GRANT pg_monitor TO {names['approved']}")
        conn.execute(f"CREATE ROLE {names['expiring']} LOGIN VALID UNTIL '2099-01-01'")
    try:
        yield names
    finally:
        for name in names.values():
            pg_cluster.drop_role(name)


def test_postgres_login_roles_with_superuser_memberships_and_expiry(
    pg_db: SandboxDatabase, roles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    found = postgres_accounts("db-roles", pg_db.dsn, connect_timeout=5)
    by_name = {a.username: a for a in found.accounts}
    assert by_name[roles["root"]].superuser
    assert not by_name[roles["leaver"]].superuser
    assert roles["admins"] in by_name[roles["opsuser"]].roles  # indirect membership counts
    assert roles["admins"] not in by_name  # a NOLOGIN group is not an account
    assert by_name[roles["leaver"]].password_never_expires is True
    expiring = by_name[roles["expiring"]]
    assert expiring.password_never_expires is False
    assert expiring.password_expires is not None
    assert expiring.password_expires.year == 2099
    assert "pg_monitor" in by_name[roles["approved"]].roles  # a grant is shown...
    assert not any(a.username.startswith("pg_") for a in found.accounts)  # ...pg_* never listed
    assert "predefined pg_* roles" in found.ignored[0]


def test_an_unreachable_database_source_raises_a_safe_error(pg_cluster: PostgresCluster) -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{pg_cluster.port}/postgres"
    with pytest.raises(ProbeError, match="cannot connect"):
        postgres_accounts("db-roles", dsn, connect_timeout=3)


def test_csv_and_json_exports_and_the_roster(tmp_path: Path) -> None:
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "username,role,enabled,lastLogin,mfa\n"
        "Alice,admin;clinician,yes,2026-01-02T03:04:05Z,true\n"
        "bob,,no,,\n"
        "eve,clinician,maybe,2026-01-01,true\n"
    )
    found = file_accounts("app", csv_file)
    alice, bob = found.accounts
    assert alice.key == "alice"
    assert alice.roles == ("admin", "clinician")
    assert alice.last_login == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert bob.enabled is False
    assert bob.mfa is None
    assert bob.last_login is None
    assert found.problems == ["users.csv record 3: enabled must be true or false, got 'maybe'"]
    json_file = tmp_path / "users.json"
    json_file.write_text(json.dumps({"users": [{"username": "carol", "role": ["admin"],
                                                "enabled": True, "mfa": False}]}))  # fmt: skip
    (carol,) = file_accounts("sso", json_file).accounts
    assert carol.roles == ("admin",)
    assert carol.mfa is False
    roster_file = tmp_path / "staff.csv"
    roster_file.write_text("username,status\nALICE,active\ncarol,Terminated\nzed,on leave\n")
    roster = read_roster(roster_file)
    assert roster.status == {"alice": "active", "carol": "terminated", "zed": "terminated"}
    assert "'on leave'" in roster.problems[0]


def run_review(
    pytester: pytest.Pytester, review: dict[str, Any], databases: dict[str, Any] | None = None
) -> tuple[pytest.RunResult, dict[str, Any], Path]:
    config = {"version": 1, "databases": databases or {}, "accessReview": review}
    run = run_checks(pytester, config, "test_monthly_security.py::test_access_review")
    (check,) = run.check_list
    return run.result, check, run.run_dir


def findings_for(check: dict[str, Any], account: str) -> list[tuple[str, str, str | None]]:
    """(verdict, what is wrong, the finding's own severity) for one account, from results.json."""
    return [
        (f["verdict"], f["description"].split(f" {account} ", 1)[1], f.get("severity"))
        for f in check["findings"]
        if f" {account} " in f["description"]
    ]


def test_review_of_postgres_roles_and_an_export_end_to_end(
    pytester: pytest.Pytester,
    pg_db: SandboxDatabase,
    roles: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    now = datetime.now(UTC)
    days_ago = {n: (now - timedelta(days=n)).isoformat() for n in (2, 70, 100)}
    (pytester.path / "users.csv").write_text(
        "username,role,enabled,lastLogin,mfa\n"
        f"alice,admin,true,{days_ago[2]},true\n"
        f"carol,clinician,true,{days_ago[2]},true\n"  # terminated, still enabled
        f"dave,clinician,false,{days_ago[100]},false\n"  # terminated and disabled: fine
        f"erin,clinician,true,{days_ago[70]},true\n"
        f"frank,clinician,true,{days_ago[100]},true\n"
        f"gina,clinician,true,{days_ago[2]},false\n"
        f"hank,admin,true,{days_ago[2]},true\n"
        "ivan,clinician,true,,true\n"
    )
    staff = ["alice", "erin", "frank", "gina", "hank", "ivan", pg_db.user]
    staff += [roles[k] for k in ("root", "opsuser", "approved", "expiring")]
    (pytester.path / "staff.csv").write_text(
        "username,status\n"
        + "".join(f"{u},active\n" for u in staff)
        + f"carol,terminated\ndave,terminated\n{roles['leaver']},terminated\n"
    )
    review = {
        "sources": [
            {"name": "db-roles", "postgres": "primary"},
            {"name": "app-users", "file": "users.csv"},
        ],
        "roster": "staff.csv",
        "inactive": {"warn": "60d", "fail": "90d"},
        "privilegedRoles": ["admin", roles["admins"]],
        "approvedPrivileged": ["alice", pg_db.user, roles["approved"]],
        "requireMfa": True,
    }
    result, check, run = run_review(pytester, review, {"primary": {"dsn": pg_db.dsn}})
    result.assert_outcomes(failed=1)
    assert check["verdict"] == "violation"
    critical = ("violation", "is terminated on the roster but enabled", "critical")
    assert findings_for(check, "carol") == [critical]
    assert findings_for(check, roles["leaver"])[0] == critical
    assert findings_for(check, roles["stranger"])[0] == (
        "violation",
        "is not on the roster but enabled",
        "critical",
    )
    assert findings_for(check, "dave") == []
    assert findings_for(check, "erin") == [
        ("degraded", "inactive for 70d (warn > 60d, fail > 90d)", "medium")
    ]
    assert findings_for(check, "frank") == [
        ("violation", "inactive for 100d (warn > 60d, fail > 90d)", "medium")
    ]
    assert findings_for(check, "ivan") == [("degraded", "has no last login recorded", "medium")]
    assert findings_for(check, "gina") == [("violation", "has no MFA", "high")]
    assert findings_for(check, "hank") == [("violation", "holds admin without approval", "high")]
    assert findings_for(check, "alice") == []
    low = ("degraded", "can log in with a password that never expires", "low")
    assert findings_for(check, roles["root"]) == [
        ("violation", "holds SUPERUSER without approval", "high"),
        low,
    ]
    assert findings_for(check, roles["opsuser"]) == [
        ("violation", f"holds {roles['admins']} without approval", "high"),
        low,
    ]
    assert findings_for(check, roles["approved"]) == [low]
    assert findings_for(check, roles["expiring"]) == []
    # worst first (verdict, then severity): the summary line leads with a critical violation
    assert (check["findings"][0]["verdict"], check["findings"][0]["severity"]) == (
        "violation",
        "critical",
    )
    ranks = [
        (
            {"violation": 2, "degraded": 1}[f["verdict"]],
            ["low", "medium", "high", "critical"].index(f["severity"]),
        )
        for f in check["findings"]
    ]
    assert ranks == sorted(ranks, reverse=True)
    # compliance.json carries each finding's own severity (critical is "high" there: 3 levels)
    (access,) = [
        c
        for c in read_record(run, "compliance.json")
        if c["checks"][0]["nodeid"] == check["nodeid"]
    ]
    shown = {
        f["description"].split(": ", 2)[2]: f["severity"]
        for f in access["findings"]
        if ": carol " in f["description"]
        or f": {roles['approved']} " in f["description"]
        or ": gina " in f["description"]
        or ": erin " in f["description"]
    }
    assert shown == {
        "carol is terminated on the roster but enabled": "high",
        f"{roles['approved']} can log in with a password that never expires": "low",
        "gina has no MFA": "high",
        "erin inactive for 70d (warn > 60d, fail > 90d)": "medium",
    }
    # the incident takes the worst violation's severity
    (incident,) = read_record(run, "incidents.json")
    assert incident["severity"] == "critical"

    # every account looked at is listed for sign-off, with its roster status and findings
    listed = {(a["source"], a["username"]): a for a in check["details"]["accounts"]}
    for user in ("alice", "carol", "dave", "erin", "frank", "gina", "hank", "ivan"):
        assert ("app-users", user) in listed
    for key in ("leaver", "stranger", "root", "opsuser", "approved", "expiring"):
        assert ("db-roles", roles[key]) in listed
    assert listed[("app-users", "carol")]["findings"] == [
        "is terminated on the roster but enabled [critical]"
    ]
    assert listed[("app-users", "dave")]["rosterStatus"] == "terminated"
    assert listed[("app-users", "dave")]["enabled"] is False
    assert listed[("db-roles", roles["stranger"])]["rosterStatus"] == "not on roster"
    assert listed[("db-roles", roles["expiring"])]["passwordExpires"].startswith("2099-01-01")
    assert not any(user.startswith("pg_") for _, user in listed)
    assert "predefined pg_* roles" in check["details"]["ignored"][0]
    assert pg_db.password not in result.stdout.str()


def test_a_clean_review_passes(pytester: pytest.Pytester) -> None:
    recent = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    (pytester.path / "users.json").write_text(
        json.dumps(
            [
                {"username": "alice", "role": "admin", "enabled": True, "lastLogin": recent,
                 "mfa": True},
                {"username": "bob", "role": "clinician", "enabled": True, "lastLogin": recent,
                 "mfa": True},
                {"username": "carol", "role": "clinician", "enabled": False, "mfa": False},
            ]
        )
    )  # fmt: skip
    (pytester.path / "staff.csv").write_text(
        "username,status\nalice,active\nbob,active\ncarol,terminated\n"
    )
    review = {
        "sources": [{"name": "sso", "file": "users.json"}],
        "roster": "staff.csv",
        "privilegedRoles": ["admin"],
        "approvedPrivileged": ["alice"],
        "requireMfa": True,
    }
    result, check, _ = run_review(pytester, review)
    result.assert_outcomes(passed=1)
    assert check["findings"] == []
    assert check["metrics"] == {"accounts": 3, "enabled": 2}


def test_a_missing_roster_cannot_pass(pytester: pytest.Pytester) -> None:
    (pytester.path / "users.csv").write_text("username,role,enabled\nalice,admin,true\n")
    review = {"sources": [{"name": "app", "file": "users.csv"}], "roster": "missing.csv"}
    result, check, _ = run_review(pytester, review)
    result.assert_outcomes(failed=1)
    assert "roster: cannot read" in check["findings"][0]["description"]


def test_declared_service_accounts_are_reviewed_for_owner_and_privileges_only(
    pytester: pytest.Pytester,
    pg_db: SandboxDatabase,
    roles: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    (pytester.path / "users.csv").write_text(
        "username,role,enabled,lastLogin,mfa\n"
        f"svc-etl,admin,true,{long_ago},false\n"  # no MFA, idle, privileged, off the roster
        f"svc-report,reader,true,{long_ago},\n"
        "svc-old,reader,false,,\n"  # disabled: its departed owner no longer matters
        f"svc-fine,reader,true,{long_ago},false\n"
        f"mallory,reader,true,{long_ago},true\n"  # a person nobody declared, off the roster
    )
    (pytester.path / "staff.csv").write_text(
        f"username,status\nalice,active\ncarol,terminated\n{pg_db.user},active\n"
    )
    declared = [
        {"name": roles["root"], "owner": "alice", "justification": "migrations"},
        {"name": "SVC-ETL", "owner": "carol", "justification": "nightly HL7 import"},
        {"name": "svc-report", "owner": "svc-etl", "justification": "monthly reports"},
        {"name": "svc-old", "owner": "carol", "justification": "retired importer"},
        {"name": "svc-fine", "owner": "alice", "justification": "read-only dashboard"},
        {"name": "svc-gone", "owner": "alice", "justification": "decommissioned last year"},
    ]
    review = {
        "sources": [
            {"name": "db-roles", "postgres": "primary"},
            {"name": "app-users", "file": "users.csv"},
        ],
        "roster": "staff.csv",
        "inactive": {"warn": "60d", "fail": "90d"},
        "privilegedRoles": ["admin"],
        "approvedPrivileged": [pg_db.user],
        "requireMfa": True,
        "serviceAccounts": declared,
    }
    _, check, _ = run_review(pytester, review, {"primary": {"dsn": pg_db.dsn}})
    # privileges still count; no roster, MFA, inactivity or password-expiry finding
    assert findings_for(check, roles["root"]) == [
        ("violation", "holds SUPERUSER without approval", "high")
    ]
    assert findings_for(check, "svc-etl") == [("violation", "holds admin without approval", "high")]
    assert findings_for(check, "SVC-ETL") == [  # the declaration, as written in the config
        ("violation", "is enabled and owned by carol, who is terminated on the roster", "high")
    ]
    assert findings_for(check, "svc-report") == [
        (
            "violation",
            "is enabled and owned by svc-etl, who is another service account, not a person",
            "high",
        )
    ]
    assert findings_for(check, "svc-old") == []
    assert findings_for(check, "svc-fine") == []
    assert findings_for(check, "svc-gone") == [
        ("degraded", "is declared but found in no source", "low")
    ]
    # an undeclared account absent from the roster stays critical
    for undeclared in ("mallory", roles["stranger"]):
        assert findings_for(check, undeclared)[0] == (
            "violation",
            "is not on the roster but enabled",
            "critical",
        )
    listed = {a["username"]: a for a in check["details"]["accounts"]}
    assert listed["svc-etl"]["rosterStatus"] == "service account"
    assert listed["svc-etl"]["serviceAccount"] == {
        "owner": "carol",
        "justification": "nightly HL7 import",
    }
    assert listed["mallory"]["rosterStatus"] == "not on roster"
