"""Sandbox fixtures; tests/conftest.py loads them with pytest_plugins = ["sandbox_fixtures"]."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_maintcheck.sandbox import (
    CertAuthority,
    PostgresCluster,
    SandboxApi,
    SandboxDatabase,
    make_ca,
)

__all__ = ["http_api", "https_api", "pg_cluster", "pg_db", "sandbox_ca"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One initdb per session (per xdist worker: each worker is its own session)."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_db(pg_cluster: PostgresCluster) -> Iterator[SandboxDatabase]:
    """A fresh, uniquely named database in the session cluster, dropped afterwards."""
    db = pg_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    try:
        yield db
    finally:
        pg_cluster.drop_database(db.name)


@pytest.fixture(scope="session")
def sandbox_ca() -> CertAuthority:
    return make_ca()


@pytest.fixture(scope="session")
def https_api(
    sandbox_ca: CertAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxApi]:
    """SandboxApi over HTTPS with a cert for 127.0.0.1 and localhost; .ca_file verifies it."""
    d: Path = tmp_path_factory.mktemp("https-api")
    cert, key = sandbox_ca.issue(["127.0.0.1", "localhost"]).write(d)
    with SandboxApi(certfile=cert, keyfile=key, ca_file=sandbox_ca.write_ca(d)) as api:
        yield api


@pytest.fixture
def http_api() -> Iterator[SandboxApi]:
    """A plain-HTTP SandboxApi per test, so a test may turn its knobs freely."""
    with SandboxApi() as api:
        yield api
