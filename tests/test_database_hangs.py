"""Review finding: a PostgreSQL probe could wait for ever once connected.

statement_timeout is enforced by the server: a backend that stops answering (here really
stopped, with SIGSTOP) or a network that drops leaves psycopg waiting. The weekly snapshot, the
sessions probe and the access review's role query are bounded from outside, and libpq's
keepalives / tcp_user_timeout are set so a dead peer is noticed.

The backend is stopped by a small TCP relay in front of the sandbox server: it reads the
backend's pid from BackendKeyData and sends SIGSTOP the moment the client sends its first
statement, so the probe is connected and then meets a server that never answers. Every
stopped backend gets SIGCONT in a finally.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from check_runs import run_checks
from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import postgres
from pytest_maintcheck.probes.access import postgres_accounts
from pytest_maintcheck.probes.pg_maintenance import take_snapshot
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.probes.sessions import app_sessions, pg_sessions
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase

LIVENESS = 40.0  # far above every bound below (at most 1 + 6 x 1 + 5 s): only a hang exceeds it


class StoppingRelay:
    """127.0.0.1 relay to the sandbox server that SIGSTOPs each session's backend as soon as
    the client sends its first message after the server said ReadyForQuery."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.stopped: list[int] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, db: SandboxDatabase) -> str:
        # no SSL or GSS negotiation: the relay reads the plain protocol
        return (
            f"postgresql://{db.user}@127.0.0.1:{self.port}/{db.name}"
            "?sslmode=disable&gssencmode=disable"
        )

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream))
                session: dict[str, Any] = {"pid": None, "ready": threading.Event()}
                for source, sink, watch in ((server, client, True), (client, server, False)):
                    threading.Thread(
                        target=self._pump, args=(source, sink, watch, session), daemon=True
                    ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool, s: Any) -> None:
        buffer, stopped = b"", False
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if from_server and not s["ready"].is_set():
                    buffer += data
                    while len(buffer) >= 5:  # type byte, int32 length (itself included)
                        size = int.from_bytes(buffer[1:5], "big")
                        if len(buffer) < 1 + size:
                            break
                        kind, body, buffer = buffer[:1], buffer[5 : 1 + size], buffer[1 + size :]
                        if kind == b"K":
                            s["pid"] = int.from_bytes(body[:4], "big")
                        elif kind == b"Z":
                            s["ready"].set()
                elif not from_server and s["ready"].is_set() and not stopped:
                    stopped = True
                    os.kill(s["pid"], signal.SIGSTOP)  # the server runs as postgres/nobody
                    with self._lock:
                        self.stopped.append(s["pid"])
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def resume(self) -> None:
        with self._lock:
            pids, self.stopped = self.stopped, []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        self.listener.close()


@pytest.fixture
def relay(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoppingRelay]:
    """Torn down before pg_db, so the database is dropped with no backend left stopped."""
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    stopping = StoppingRelay(pg_cluster.port)
    try:
        yield stopping
    finally:
        stopping.close()


def _outcome_of(relay: StoppingRelay, probe: Callable[[], object]) -> BaseException | object:
    """Run the probe; fail (rather than hang the suite) if it is still waiting at LIVENESS."""
    got: list[BaseException | object] = []

    def run() -> None:
        try:
            got.append(probe())
        except BaseException as exc:  # the outcome under test
            got.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    try:
        runner.start()
        runner.join(LIVENESS)
        assert relay.stopped, "the relay never stopped a backend: the probe sent nothing"
        assert not runner.is_alive(), "the probe is still waiting for the stopped backend"
    finally:
        relay.resume()
    return got[0]


def test_weekly_snapshot_gives_up_on_a_stopped_backend(
    relay: StoppingRelay, pg_db: SandboxDatabase
) -> None:
    database = Database("primary", relay.dsn(pg_db), connect_timeout=1, statement_timeout=1)
    target = DatabaseMaintenanceTarget("primary", timeout=1)
    outcome = _outcome_of(relay, lambda: take_snapshot(target, database))
    assert isinstance(outcome, ProbeError), outcome
    # 1 s to connect + 6 statements x 1 s + 5 s grace
    assert "primary (" in str(outcome)
    assert "did not answer within 12s" in str(outcome)


def test_sessions_probe_gives_up_on_a_stopped_backend(
    relay: StoppingRelay, pg_db: SandboxDatabase
) -> None:
    dsn = relay.dsn(pg_db)
    outcome = _outcome_of(relay, lambda: pg_sessions(dsn, connect_timeout=1, statement_timeout=1))
    assert isinstance(outcome, ProbeError), outcome
    assert "did not answer within 7s" in str(outcome)


def test_application_sessions_query_gives_up_on_a_stopped_backend(
    relay: StoppingRelay, pg_db: SandboxDatabase
) -> None:
    from datetime import UTC, datetime

    dsn = relay.dsn(pg_db)
    query = 'SELECT 1 AS "sessionId", 2 AS username, now() AS "createdAt", now() AS "lastSeenAt"'
    outcome = _outcome_of(
        relay,
        lambda: app_sessions(
            dsn, query, now=datetime.now(UTC), connect_timeout=1, statement_timeout=1
        ),
    )
    assert isinstance(outcome, ProbeError), outcome
    assert "did not answer within 7s" in str(outcome)


def test_access_review_role_query_gives_up_on_a_stopped_backend(
    relay: StoppingRelay, pg_db: SandboxDatabase
) -> None:
    dsn = relay.dsn(pg_db)
    outcome = _outcome_of(
        relay, lambda: postgres_accounts("db-roles", dsn, connect_timeout=1, statement_timeout=1)
    )
    assert isinstance(outcome, ProbeError), outcome
    assert str(outcome).startswith("db-roles: pg_roles did not answer within 8s")


def test_sessions_check_reports_a_stopped_backend_as_could_not_measure(
    relay: StoppingRelay, pg_db: SandboxDatabase, pytester: pytest.Pytester
) -> None:
    cfg = {
        "version": 1,
        "system": "test",
        "databases": {
            "primary": {"dsn": relay.dsn(pg_db), "connectTimeout": "1s", "statementTimeout": "1s"}
        },
        "securityMonitoring": {"sessions": {"database": "primary"}},
    }
    watchdog = threading.Timer(LIVENESS, relay.resume)  # unbounded, the run would never end
    watchdog.start()
    try:
        run = run_checks(pytester, cfg, "test_daily_security.py::test_sessions")
    finally:
        watchdog.cancel()
        relay.resume()
    run.result.assert_outcomes(failed=1)
    check = run.by_test["test_sessions"]
    assert check["verdict"] == "violation"
    assert "primary: " in str(check["message"])
    assert "did not answer within 7s" in str(check["message"])


def test_connections_carry_keepalives_and_tcp_user_timeout(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    with postgres.connect(pg_db.dsn, connect_timeout=5, statement_timeout=5) as conn:
        params = conn.info.get_parameters()
    assert params["keepalives"] == "1"
    assert params["keepalives_idle"] == str(postgres.KEEPALIVE_IDLE)
    assert params["keepalives_interval"] == str(postgres.KEEPALIVE_INTERVAL)
    assert params["keepalives_count"] == str(postgres.KEEPALIVE_COUNT)
    assert params["tcp_user_timeout"] == str(postgres.TCP_USER_TIMEOUT_MS)
