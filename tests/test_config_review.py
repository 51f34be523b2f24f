"""Monthly PostgreSQL configuration review against real clusters, as a least-privileged role.

The session cluster keeps PostgreSQL's defaults (no TLS, no connection logging, no data
checksums): each of those is a finding there. A second cluster, started for this module with
TLS 1.2+, connection/DDL logging and ``initdb --data-checksums`` (settings that need a restart
or a new cluster), is the well-configured one; faults are planted per test database (ALTER
DATABASE, GRANT, roles) or in its pg_hba.conf, restored afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from psycopg import sql

from check_runs import run_checks
from pytest_maintcheck.config import load_config
from pytest_maintcheck.config_operations import ConfigReview
from pytest_maintcheck.probes.pg_config_review import (
    MD5_FUNCTION_SQL,
    HbaRule,
    ReviewSnapshot,
    review_snapshot,
)
from pytest_maintcheck.rules.configuration import hba_problems, judge_configuration
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from pytest_maintcheck.verdict import Assessment, Verdict
from secure_postgres import secure_cluster_running


@pytest.fixture(scope="module")
def secure_cluster() -> Iterator[PostgresCluster]:
    with secure_cluster_running() as cluster:
        yield cluster


@contextmanager
def least_privileged(cluster: PostgresCluster, db: SandboxDatabase) -> Iterator[tuple[str, str]]:
    """A login role with CONNECT on the database and nothing else: (name, password)."""
    name, password = f"rev_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    cluster.create_role(name, password)
    with db.connect() as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(db.name), sql.Identifier(name)
            )
        )
    try:
        yield name, password
    finally:
        cluster.drop_database(db.name)  # the grants made in it go with it
        cluster.drop_role(name)


@pytest.fixture
def secure_db(secure_cluster: PostgresCluster) -> Iterator[SandboxDatabase]:
    db = secure_cluster.create_database(f"r_{uuid.uuid4().hex[:10]}")
    try:
        yield db
    finally:
        secure_cluster.drop_database(db.name)


def grant_review_reads(cluster: PostgresCluster, db: SandboxDatabase, role: str) -> None:
    """What the findings tell an operator to grant, run as they would run it."""
    with db.connect() as conn:  # pg_catalog is per database, and so are grants on it
        conn.execute(
            sql.SQL("GRANT SELECT ON pg_hba_file_rules TO {}").format(sql.Identifier(role))
        )
        conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO {}").format(
                sql.Identifier(role)
            )
        )
        conn.execute(MD5_FUNCTION_SQL.format(role=role))
        conn.execute(sql.SQL("GRANT pg_read_all_settings TO {}").format(sql.Identifier(role)))


def snapshot(cluster: PostgresCluster, db: SandboxDatabase, role: str) -> ReviewSnapshot:
    dsn = cluster.dsn(db.name, user=role)
    return review_snapshot(dsn, connect_timeout=5, statement_timeout=5)


def approving(cluster: PostgresCluster, **expected: object) -> ConfigReview:
    """The review's defaults, with the sandbox's superuser approved."""
    return ConfigReview(database="primary", approved_superusers=(cluster.superuser,), **expected)  # type: ignore[arg-type]


def judged(review: ConfigReview, snap: ReviewSnapshot) -> Assessment:
    made = Assessment()
    judge_configuration(review, snap, made)
    return made


def texts(assessment: Assessment) -> list[str]:
    return [f"{f.verdict}: {f.description} -> {f.action}" for f in assessment.findings]


# ---------------------------------------------------------------------------- real clusters


def test_defaults_cluster_findings_name_setting_value_expected_and_fix(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's defaults fall short of the secure defaults; the role may read neither the
    pg_hba rules nor password hashes, and each finding says which grant would let it."""
    with least_privileged(pg_cluster, pg_db) as (role, password):
        monkeypatch.setenv("PGPASSWORD", password)
        snap = snapshot(pg_cluster, pg_db, role)
        found = judged(ConfigReview(database="primary"), snap)
    lines = texts(found)
    for expected in (
        "ssl = off, expected on -> Change it: set ssl_cert_file and ssl_key_file, ALTER SYSTEM "
        "SET ssl = on",
        "log_connections = off, expected on -> Change it: ALTER SYSTEM SET log_connections = on",
        "log_disconnections = off, expected on",
        "log_statement = none, expected ddl or more -> Change it: ALTER SYSTEM SET "
        "log_statement = 'ddl'",
        "data_checksums = off, expected on -> Change it: stop the cluster and run pg_checksums "
        "--enable",
        "superuser role(s) sandbox_admin not in approvedSuperusers (postgres)",
    ):
        assert any(expected in line for line in lines), (expected, lines)
    hba = next(f for f in found.findings if "pg_hba rules not reviewed" in f.description)
    assert hba.verdict is Verdict.DEGRADED
    assert f"GRANT SELECT ON pg_hba_file_rules TO {role};" in hba.action
    hidden = next(f for f in found.findings if "ssl_min_protocol_version" in f.description)
    assert hidden.verdict is Verdict.DEGRADED
    assert f"GRANT pg_read_all_settings TO {role}" in hidden.action
    md5 = next(f for f in found.findings if "md5 password hash" in f.description)
    assert md5.verdict is Verdict.DEGRADED
    assert "SECURITY DEFINER" in md5.action
    assert f"TO {role};" in md5.action
    assert found.verdict is Verdict.VIOLATION
    # what passed is not reported as wrong
    assert not any("password_encryption" in line for line in lines)
    assert not any("public" in f.description for f in found.findings)


def test_secure_cluster_with_the_grants_passes(
    secure_cluster: PostgresCluster, secure_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    with least_privileged(secure_cluster, secure_db) as (role, password):
        grant_review_reads(secure_cluster, secure_db, role)
        monkeypatch.setenv("PGPASSWORD", password)
        snap = snapshot(secure_cluster, secure_db, role)
        found = judged(approving(secure_cluster), snap)
    assert snap.hba is not None
    assert snap.hba, "pg_hba rules read"
    assert snap.md5_roles == []
    assert snap.get("data_checksums") == "on"
    assert found.findings == [], texts(found)
    assert found.verdict is Verdict.PASS


@contextmanager
def hba_lines(cluster: PostgresCluster, *lines: str) -> Iterator[None]:
    """Lines appended to pg_hba.conf; pg_hba_file_rules reads the file, so no reload is needed
    (and none is done: the cluster keeps the rules it loaded)."""
    hba = cluster.data_dir / "pg_hba.conf"
    original = hba.read_bytes()
    try:
        with hba.open("a") as f:
            f.write("\n".join(lines) + "\n")
        yield
    finally:
        hba.write_bytes(original)


def test_planted_faults_in_the_secure_cluster(
    secure_cluster: PostgresCluster, secure_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_hba trust/password/md5 and open-to-all lines, an md5 role, a per-database
    password_encryption, CREATE on public for PUBLIC, an unapproved superuser."""
    legacy = f"legacy_{uuid.uuid4().hex[:8]}"
    with secure_db.connect() as conn:
        conn.execute(f"ALTER DATABASE {secure_db.name} SET password_encryption = 'md5'")
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        conn.execute("SET password_encryption = 'md5'")
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD 'old-secret'").format(
                sql.Identifier(legacy)
            )
        )
    try:
        with (
            least_privileged(secure_cluster, secure_db) as (role, password),
            hba_lines(
                secure_cluster,
                "host all all 0.0.0.0/0 trust",
                "hostssl all all 10.0.0.0/8 password",
                "hostnossl all all ::/0 md5",
                "host all all 192.168.0.0/16 frobnicate",
            ),
        ):
            grant_review_reads(secure_cluster, secure_db, role)
            monkeypatch.setenv("PGPASSWORD", password)
            snap = snapshot(secure_cluster, secure_db, role)
            found = judged(approving(secure_cluster), snap)
    finally:
        secure_cluster.drop_role(legacy)
    lines = texts(found)
    line_of = {r.method: r.line for r in snap.hba or []}

    def has(*parts: str) -> bool:
        return any(all(p in line for p in parts) for line in lines)

    assert has(
        "password_encryption = md5, expected scram-sha-256", "ALTER SYSTEM SET password_encryption"
    )
    assert has(f"role(s) still hold an md5 password hash ({legacy})", "\\password NAME")
    assert has(
        "violation", f"line {line_of['trust']}: host all all 0.0.0.0/0.0.0.0 trust lets anyone in"
    )
    assert has("violation", f"line {line_of['trust']}", "is open to every address without TLS")
    assert has("degraded", f"line {line_of['password']}: hostssl", "clear text")
    assert has("degraded", f"line {line_of['md5']}: hostnossl", "accepts md5 password hashes")
    assert has("violation", f"line {line_of['md5']}", "open to every address without TLS")
    assert has("degraded", "is not loaded: invalid authentication method")
    assert has(
        "CREATE on schema public is granted to PUBLIC", "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    )
    assert has(
        f"superuser role(s) {legacy} not in approvedSuperusers", f"ALTER ROLE {legacy} NOSUPERUSER"
    )
    # the secure cluster's own settings still pass
    assert not has("ssl =")
    assert not has("log_connections")
    assert not has("data_checksums")


def test_expected_values_are_overridable_per_database(
    secure_cluster: PostgresCluster, secure_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logStatement: mod asks more than the cluster's ddl; requirePgaudit needs pgaudit loaded."""
    monkeypatch.setenv("PGPASSWORD", secure_cluster.password)
    snap = review_snapshot(
        secure_cluster.dsn(secure_db.name), connect_timeout=5, statement_timeout=5
    )  # as the superuser: reads everything
    found = judged(approving(secure_cluster, log_statement="mod", require_pgaudit=True), snap)
    lines = texts(found)
    assert any("log_statement = ddl, expected mod or more" in x for x in lines), lines
    assert any(
        "shared_preload_libraries = 'pg_stat_statements', expected it to include pgaudit" in x
        for x in lines
    ), lines
    with secure_db.connect() as conn:
        conn.execute(f"ALTER DATABASE {secure_db.name} SET log_statement = 'all'")
    snap = review_snapshot(
        secure_cluster.dsn(secure_db.name), connect_timeout=5, statement_timeout=5
    )
    found = judged(approving(secure_cluster, log_statement="mod"), snap)
    assert found.findings == [], texts(found)


def test_check_end_to_end_records_findings(
    pytester: pytest.Pytester,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with least_privileged(pg_cluster, pg_db) as (role, password):
        monkeypatch.setenv("PGPASSWORD", password)
        config = {
            "version": 1,
            "databases": {"primary": {"dsn": pg_cluster.dsn(pg_db.name, user=role)}},
            "configReview": [
                {
                    "database": "primary",
                    "ssl": False,
                    "dataChecksums": False,
                    "logConnections": False,
                    "logDisconnections": False,
                    "logStatement": "none",
                    "approvedSuperusers": [pg_cluster.superuser],
                }
            ],
        }
        run = run_checks(pytester, config, "test_monthly_configuration.py")
    result = run.checks["primary"]
    assert result["verdict"] == "degraded", result
    assert result["suite"] == "monthly"
    descriptions = [f["description"] for f in result["findings"]]
    assert any("pg_hba rules not reviewed" in d for d in descriptions), descriptions
    assert any("HIPAA 164.312(b) audit controls" in r for r in result["requirements"])
    assert result["details"]["review"]["settings"]["ssl"] == "off"
    compliance = run.record("compliance.json")
    assert any(c["category"] == "Secure configuration and audit logging" for c in compliance)


def test_unreachable_database_is_a_violation(
    pytester: pytest.Pytester, pg_cluster: PostgresCluster
) -> None:
    from pytest_maintcheck.sandbox import free_port

    config = {
        "version": 1,
        "databases": {
            "primary": {"dsn": f"postgresql://x@127.0.0.1:{free_port()}/x", "connectTimeout": "2s"}
        },
        "configReview": [{"database": "primary"}],
    }
    run = run_checks(pytester, config, "test_monthly_configuration.py")
    result = run.checks["primary"]
    assert result["verdict"] == "violation"
    assert "cannot connect" in result["message"]


# ---------------------------------------------------------------------------- rules alone


ANY_V4 = "0.0.0.0"  # noqa: S104 (an address in a pg_hba rule, nothing binds it)


def rule(line: int, kind: str, address: str | None, netmask: str | None, method: str) -> HbaRule:
    return HbaRule(line, kind, ("all",), ("all",), address, netmask, method, None)


def test_hba_rules_judged() -> None:
    found = hba_problems(
        [
            rule(1, "local", None, None, "peer"),
            rule(2, "hostssl", ANY_V4, ANY_V4, "scram-sha-256"),  # TLS, any address: fine
            rule(3, "host", "all", None, "scram-sha-256"),  # any address, TLS optional
            rule(4, "host", "10.0.0.0", "255.0.0.0", "password"),
            rule(5, "local", None, None, "trust"),
            rule(6, "host", ANY_V4, ANY_V4, "reject"),
        ]
    )
    assert [(v.value, r.line) for v, r, _what, _exp in found] == [
        ("violation", 3),
        ("violation", 4),
        ("violation", 5),
    ]


def test_config_review_config_errors(tmp_path: Path) -> None:
    from pytest_maintcheck.config import ConfigError

    path = tmp_path / "maintcheck.yaml"
    path.write_text(
        "version: 1\ndatabases: {primary: {dsn: 'postgresql://m@h/db'}}\n"
        "configReview:\n  - {database: primary, requirePgadit: true}\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"configReview\[0\]\.requirePgadit: unknown key; did you mean 'requirePgaudit'",
    ):
        load_config(path)
    path.write_text(
        "version: 1\ndatabases: {primary: {dsn: 'postgresql://m@h/db'}}\n"
        "configReview:\n  - {database: primary, host: db-host}\n"
    )
    with pytest.raises(ConfigError, match="no hosts entry named 'db-host'"):
        load_config(path)
    path.write_text(
        "version: 1\ndatabases: {primary: {dsn: 'postgresql://m@h/db'}}\n"
        "configReview:\n  - {database: primary, logStatement: ddl, approvedSuperusers: [dba]}\n"
    )
    loaded = load_config(path).config_review[0]
    assert loaded.approved_superusers == ("dba",)
    assert loaded.ssl_min_protocol_version == "TLSv1.2"
    assert loaded.password_encryption == "scram-sha-256"
