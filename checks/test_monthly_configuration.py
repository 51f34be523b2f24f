"""Monthly configuration review and encryption.

PostgreSQL: TLS, password hashing, pg_hba rules, audit logging, pgaudit, data checksums,
superusers, CREATE on the public schema; read-only, as a least-privileged role: what that role
may not read is a finding naming the grant needed. Encryption: every endpoint and connection
of the config uses TLS unless exempt; backups declared encrypted at rest are. The rules are in
pytest_maintcheck.rules.configuration and .encryption."""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    AtRest,
    Config,
    ConfigReview,
    Encryption,
    at_rest_of,
    channels,
    configuration_of,
    judge_at_rest,
    judge_configuration,
    judge_in_transit,
    tls_of,
)

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("config_review")
def test_config_review(
    reviewed_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    snapshot = configuration_of(maintcheck_config.database(reviewed_database.database))
    judge_configuration(reviewed_database, snapshot, assessment)


@pytest.mark.maintcheck("encryption_in_transit")
def test_encryption_in_transit(
    encryption_policy: Encryption, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_in_transit(encryption_policy, channels(maintcheck_config), tls_of, assessment)


@pytest.mark.maintcheck("encryption_at_rest")
def test_encryption_at_rest(
    encrypted_store: AtRest, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_at_rest(encrypted_store, at_rest_of(encrypted_store, maintcheck_config), assessment)
