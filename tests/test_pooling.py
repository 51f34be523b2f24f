"""Weekly connection pooling against a real PgBouncer (Debian's package) in front of the test
PostgreSQL, read through its admin console as a stats_users account.

Each test starts its own PgBouncer with the settings its fault needs: a pool of one with a
transaction holding it (clients really wait), max_client_conn nearly used up, pools that may
open more server connections than PostgreSQL allows. Then the memory allocation of the test
PostgreSQL against its host's memory.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from check_runs import run_checks
from pytest_maintcheck.config import Thresholds
from pytest_maintcheck.config_operations import OPERATIONS_THRESHOLDS, ConfigReview, Pooler
from pytest_maintcheck.probes.host_resources import HostResources
from pytest_maintcheck.probes.pg_config_review import review_snapshot
from pytest_maintcheck.probes.pgbouncer import PoolerState, read_pooler, server_limit
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.rules.allocation import judge_allocation
from pytest_maintcheck.rules.pooling import judge_pooler
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from pytest_maintcheck.sandbox.services import PgBouncer
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

APP_PASSWORD = uuid.uuid4().hex
STATS_PASSWORD = uuid.uuid4().hex


@pytest.fixture
def app_role(pg_cluster: PostgresCluster, pg_db: SandboxDatabase) -> Iterator[str]:
    name = f"app_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_role(name, APP_PASSWORD)
    with pg_db.connect() as conn:
        conn.execute(f'GRANT CONNECT ON DATABASE "{pg_db.name}" TO {name}')
    yield name
    pg_cluster.drop_database(pg_db.name)
    pg_cluster.drop_role(name)


def bouncer(
    cluster: PostgresCluster, db: SandboxDatabase, app: str, pool: str = "", **settings: Any
) -> PgBouncer:
    target = f"host=127.0.0.1 port={cluster.port} dbname={db.name} {pool}".strip()
    return PgBouncer(
        {"clinical": target},
        {app: APP_PASSWORD, "stats": STATS_PASSWORD},
        stats_users=["stats"],
        settings=settings,
    )


def pooler(**thresholds: object) -> Pooler:
    merged = {**OPERATIONS_THRESHOLDS["pooling"], **thresholds}
    parsed = tuple(Threshold.parse(k, v) for k, v in merged.items())
    return Pooler(name="pgbouncer", dsn="unused", database="primary", thresholds=Thresholds(parsed))


def read(b: PgBouncer, monkeypatch: pytest.MonkeyPatch) -> PoolerState:
    monkeypatch.setenv("PGPASSWORD", STATS_PASSWORD)
    return read_pooler(b.dsn("stats"), connect_timeout=5, timeout=5)


def app_connect(b: PgBouncer, app: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host=b.host, port=b.port, dbname="clinical", user=app,
                           password=APP_PASSWORD, autocommit=True, connect_timeout=5)  # fmt: skip


def test_waiting_clients_and_longest_wait(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    app_role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool of one held by an open transaction: a second client really waits for it."""
    with ExitStack() as stack:
        b = stack.enter_context(bouncer(pg_cluster, pg_db, app_role, default_pool_size=1))
        holder = stack.enter_context(app_connect(b, app_role))
        holder.execute("BEGIN")
        holder.execute("SELECT 1")  # transaction pooling: the server is now this client's
        waiter = stack.enter_context(app_connect(b, app_role))
        done = threading.Event()
        threading.Thread(
            target=lambda: (waiter.execute("SELECT 1"), done.set()), daemon=True
        ).start()
        time.sleep(1.3)  # long enough for PgBouncer's maxwait to count whole seconds
        state = read(b, monkeypatch)
        holder.execute("COMMIT")
        assert done.wait(10), "the waiting client got the server once the transaction ended"
    made = Assessment()
    judge_pooler(pooler(clientsWaiting={"warn": 0, "fail": 20}), state, None, made)
    assert made.metrics["clientsWaiting"] == 1
    assert made.metrics["maxWait"] >= 1.0
    lines = [f"{f.verdict}: {f.description}" for f in made.findings]
    assert any(
        line.startswith(
            "degraded: pgbouncer: clients waiting for a server connection "
            f"(clinical/{app_role} 1): clients waiting 1"
        )
        for line in lines
    ), lines
    assert any("longest client wait" in line for line in lines), lines
    assert any(
        f"pool clinical/{app_role} holds 1 server connections of pool_size 1" in line
        for line in lines
    ), lines
    assert made.verdict is Verdict.DEGRADED


def test_client_saturation(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    app_role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ExitStack() as stack:
        b = stack.enter_context(bouncer(pg_cluster, pg_db, app_role, max_client_conn=5))
        for _ in range(4):
            stack.enter_context(app_connect(b, app_role))
        state = read(b, monkeypatch)  # the console's own connection is the fifth
    made = Assessment()
    judge_pooler(pooler(), state, None, made)
    assert made.metrics["clientConnections"] == 1.0
    assert any(
        "pgbouncer: 5 clients of max_client_conn 5: client connections of max_client_conn 100%"
        in f.description
        and f.verdict is Verdict.VIOLATION
        for f in made.findings
    ), made.findings


def test_pools_that_may_exceed_max_connections(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    app_role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pool_size 120 against the test server's max_connections 100: the arithmetic is shown."""
    with ExitStack() as stack:
        b = stack.enter_context(bouncer(pg_cluster, pg_db, app_role, pool="pool_size=120"))
        stack.enter_context(app_connect(b, app_role)).execute("SELECT 1")
        state = read(b, monkeypatch)
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    limit = server_limit(pg_cluster.dsn(pg_db.name), connect_timeout=5, statement_timeout=5)
    made = Assessment()
    judge_pooler(pooler(), state, limit, made)
    finding = next(f for f in made.findings if "may open" in f.description)
    assert finding.verdict is Verdict.VIOLATION
    assert (
        "the pools may open 120 server connections (clinical: 1 pool(s) x (120 + 0 reserve) = "
        "120; 1 open now) against primary's max_connections 100 - 3 reserved = 97"
    ) in finding.description
    assert made.metrics["serverConnections"] == round(120 / 97, 4)


def test_a_user_outside_stats_users_cannot_read_the_console(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    app_role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with bouncer(pg_cluster, pg_db, app_role) as b:
        monkeypatch.setenv("PGPASSWORD", APP_PASSWORD)
        with pytest.raises(ProbeError, match="not allowed"):
            read_pooler(b.dsn(app_role), connect_timeout=5, timeout=5)


def test_check_end_to_end(
    pytester: pytest.Pytester,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    app_role: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Passwords from a .pgpass file (PGPASSFILE): one for PgBouncer, one for PostgreSQL."""
    with bouncer(pg_cluster, pg_db, app_role) as b:
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(
            f"127.0.0.1:{b.port}:pgbouncer:stats:{STATS_PASSWORD}\n"
            f"127.0.0.1:{pg_cluster.port}:*:{app_role}:{APP_PASSWORD}\n"
        )
        pgpass.chmod(0o600)
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
        monkeypatch.delenv("PGPASSWORD", raising=False)
        config = {
            "version": 1,
            "databases": {"primary": {"dsn": pg_cluster.dsn(pg_db.name, user=app_role)}},
            "pooling": [
                {"name": "pgbouncer", "dsn": b.dsn("stats"), "database": "primary"},
                {"name": "gone", "dsn": "postgresql://stats@127.0.0.1:1/pgbouncer",
                 "connectTimeout": "2s"},
            ],
        }  # fmt: skip
        run = run_checks(pytester, config, "test_weekly_pooling.py")
    checks = run.checks
    assert checks["pgbouncer"]["verdict"] == "pass", checks["pgbouncer"]
    assert checks["pgbouncer"]["suite"] == "weekly"
    assert checks["pgbouncer"]["metrics"]["clientsWaiting"] == 0
    assert checks["pgbouncer"]["details"]["serverConnections"]["maxConnections"] == 100
    assert checks["gone"]["verdict"] == "violation"
    assert "cannot connect" in checks["gone"]["message"]
    assert run.result.parseoutcomes()["skipped"] == 1  # resource allocation: no configReview


# ---------------------------------------------------------------------------- allocation

MIB = 1024**2


def host_with_memory(total: int) -> HostResources:
    return HostResources("test", 4, (0.1, 0.1, 0.1), total, total // 2, 0, 0, [])


def test_memory_allocation_against_the_host(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The test server's real settings, work_mem raised for its database, on a 1 GiB host."""
    with pg_db.connect() as conn:
        conn.execute(f"ALTER DATABASE \"{pg_db.name}\" SET work_mem = '64MB'")
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    snap = review_snapshot(pg_cluster.dsn(pg_db.name), connect_timeout=5, statement_timeout=5)
    review = load_review(tmp_path, host="db-host")
    made = Assessment()
    judge_allocation(review, snap, host_with_memory(1024 * MIB), made)
    shared = snap.settings["shared_buffers"].bytes
    maintenance = snap.settings["maintenance_work_mem"].bytes
    assert shared is not None
    assert maintenance is not None
    connections = int(snap.get("max_connections") or 0)
    workers = int(snap.get("autovacuum_max_workers") or 0)
    worst = shared + 64 * MIB * connections + maintenance * workers
    assert made.metrics["memoryCommitment"] == round(worst / (1024 * MIB), 4)
    commitment = next(f for f in made.findings if "work_mem" in f.description)
    assert commitment.verdict is Verdict.VIOLATION
    assert (
        f"work_mem 67.1MB x max_connections {connections} + maintenance_work_mem"
        in commitment.description
    )
    cache = next(f for f in made.findings if "effective_cache_size" in f.description)
    assert cache.verdict is Verdict.DEGRADED  # 4GB of cache assumed on a 1 GiB host
    assert not any("shared_buffers 134.2MB of" in f.description for f in made.findings)


def load_review(folder: Path, **entry: object) -> ConfigReview:
    """A configReview entry as the loader builds it (defaults filled in)."""
    import yaml

    from pytest_maintcheck.config import load_config

    path = folder / "maintcheck.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "databases": {"primary": {"dsn": "postgresql://m@h/db"}},
                "hosts": [{"name": "db-host", "local": True}],
                "configReview": [{"database": "primary", **entry}],
            }
        )
    )
    return load_config(path).config_review[0]


def test_resource_allocation_end_to_end(
    pytester: pytest.Pytester,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against this machine's real memory: the arithmetic recorded, whatever the verdict."""
    import psutil

    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    config = {
        "version": 1,
        "databases": {"primary": {"dsn": pg_cluster.dsn(pg_db.name)}},
        "hosts": [{"name": "runner", "local": True}],
        "configReview": [{"database": "primary", "host": "runner"}],
    }
    run = run_checks(pytester, config, "test_weekly_pooling.py::test_resource_allocation")
    result = run.checks["primary"]
    assert result["details"]["hostMemoryBytes"] == psutil.virtual_memory().total
    assert result["details"]["settings"]["max_connections"] == "100"
    assert {"sharedBuffers", "memoryCommitment", "effectiveCache"} <= set(result["metrics"])
    assert result["suite"] == "weekly"
