"""Monthly configuration review and encryption.

PostgreSQL: TLS, password hashing, pg_hba rules, audit logging, pgaudit, data checksums,
superusers, CREATE on the public schema; read-only, as a least-privileged role: what that role
may not read is a finding naming the grant needed. Encryption: every endpoint and connection
of the config uses TLS unless exempt; backups declared encrypted at rest are. The rules are in
pytest_maintcheck.rules.configuration and .encryption."""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import Config
from pytest_maintcheck.config_operations import AtRest, ConfigReview, Encryption
from pytest_maintcheck.probes.encryption import (
    ConnectionTls,
    connection_tls,
    file_envelope,
    pgbackrest_repositories,
)
from pytest_maintcheck.probes.pg_config_review import review_snapshot
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.rules.configuration import judge_configuration
from pytest_maintcheck.rules.encryption import (
    Channel,
    channels,
    judge_backup_files,
    judge_in_transit,
    judge_repositories,
)
from pytest_maintcheck.verdict import Assessment

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("config_review")
def test_config_review(
    reviewed_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    db = maintcheck_config.database(reviewed_database.database)
    try:
        snap = review_snapshot(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    except ProbeError as exc:
        assessment.could_not_measure(f"{reviewed_database.database}: {exc}")
        return
    judge_configuration(reviewed_database, snap, assessment)


@pytest.mark.maintcheck("encryption_in_transit")
def test_encryption_in_transit(
    encryption_policy: Encryption, maintcheck_config: Config, assessment: Assessment
) -> None:
    def measure(channel: Channel) -> ConnectionTls:
        assert channel.dsn is not None
        return connection_tls(channel.dsn, connect_timeout=channel.connect_timeout)

    judge_in_transit(encryption_policy, channels(maintcheck_config), measure, assessment)


@pytest.mark.maintcheck("encryption_at_rest")
def test_encryption_at_rest(
    encrypted_store: AtRest, maintcheck_config: Config, assessment: Assessment
) -> None:
    store = encrypted_store
    try:
        if store.pgbackrest_config is not None:
            repositories = pgbackrest_repositories(store.pgbackrest_config)
            judge_repositories(store, repositories, assessment)
            return
        backup = next(b for b in maintcheck_config.backups if b.name == store.backup)
        files = sorted(p for p in backup.location.glob(backup.pattern) if p.is_file())
        judge_backup_files(store, [file_envelope(p) for p in files], assessment)
    except ProbeError as exc:
        assessment.could_not_measure(f"{store.name}: {exc}")
