"""The demo part for issue 14's sections: its planted faults are really there, and visible to
the demo's pg_monitor role through the grants the review names."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import pytest

from pytest_maintcheck.probes.pg_config_review import review_snapshot
from pytest_maintcheck.probes.pgbouncer import read_pooler
from pytest_maintcheck.rules.configuration import hba_problems
from pytest_maintcheck.sandbox import PostgresCluster
from pytest_maintcheck.sandbox.demo import MONITOR_ROLE, DemoContext
from pytest_maintcheck.sandbox.demo_operations import MD5_ROLE, operations
from pytest_maintcheck.verdict import Verdict


def test_operations_part_plants_its_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ExitStack() as stack:
        cluster = stack.enter_context(PostgresCluster())
        ctx = DemoContext(workdir=tmp_path, stack=stack, cluster=cluster)
        ctx.database = cluster.create_database("clinical")
        ctx.monitor_password = os.urandom(8).hex()
        cluster.create_role(MONITOR_ROLE, ctx.monitor_password, "pg_monitor")
        dsn = cluster.dsn("clinical", user=MONITOR_ROLE)
        ctx.config["databases"] = {"primary": {"dsn": dsn}}
        operations(ctx)
        monkeypatch.setenv("PGPASSWORD", ctx.monitor_password)
        snap = review_snapshot(dsn, connect_timeout=5, statement_timeout=5)
        assert snap.md5_roles == [MD5_ROLE]
        assert snap.hba is not None
        assert [(v, r.method) for v, r, _w, _e in hba_problems(snap.hba)] == [
            (Verdict.VIOLATION, "trust"),
            (Verdict.VIOLATION, "trust"),  # and open to every address without TLS
        ]
        pooling = ctx.config["pooling"][0]
        state = read_pooler(pooling["dsn"], connect_timeout=5, timeout=5)
        assert [d.pool_size for d in state.databases if d.name == "clinical"] == [120]
    config = ctx.config
    assert config["configReview"][0]["host"] == "runner"
    assert [h["name"] for h in config["hosts"]] == ["runner", "db-host"]
    patches = config["securityPatches"]
    assert Path(patches["rebootFlag"]).exists()
    assert len(list(Path(patches["advisories"]).glob("*.json"))) == 1
    assert config["encryption"]["exempt"][0]["target"] == "db-host"
    assert "atRest" not in config["encryption"]  # no backups part in this test
