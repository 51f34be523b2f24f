"""Encryption at rest, on what measuring.at_rest_of read: a pgBackRest config's repositories
or a backups entry's files (the rules themselves are in pytest_maintcheck.rules.encryption)."""

from __future__ import annotations

from pytest_maintcheck.config_operations import AtRest
from pytest_maintcheck.measuring import AtRestReading
from pytest_maintcheck.rules.encryption import judge_backup_files, judge_repositories
from pytest_maintcheck.verdict import Assessment


def judge_at_rest(store: AtRest, reading: AtRestReading, assessment: Assessment) -> None:
    if reading.repositories is not None:
        judge_repositories(store, reading.repositories, assessment)
    else:
        judge_backup_files(store, reading.files, assessment)
