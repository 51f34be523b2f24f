"""Monthly encryption checks with real parts: an HTTPS and a plain HTTP API, a TLS PostgreSQL
and the plain session one, backups really encrypted with age and gpg beside a plain gzip,
and pgBackRest configs with and without a cipher."""

from __future__ import annotations

import gzip
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from check_runs import run_checks
from pytest_maintcheck.config_operations import AtRest
from pytest_maintcheck.probes.encryption import file_envelope, pgbackrest_repositories
from pytest_maintcheck.rules.encryption import judge_backup_files, judge_repositories
from pytest_maintcheck.sandbox import PostgresCluster, SandboxApi
from pytest_maintcheck.verdict import Assessment, Verdict
from secure_postgres import secure_cluster_running


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[PostgresCluster]:
    with secure_cluster_running() as cluster:
        yield cluster


def pgpass_line(cluster: PostgresCluster) -> str:
    return f"{cluster.host}:{cluster.port}:*:{cluster.superuser}:{cluster.password}\n"


def test_in_transit_end_to_end(
    pytester: pytest.Pytester,
    tls_cluster: PostgresCluster,
    pg_cluster: PostgresCluster,
    https_api: SandboxApi,
    http_api: SandboxApi,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(pgpass_line(tls_cluster) + pgpass_line(pg_cluster))
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("PGSSLMODE", raising=False)
    config = {
        "version": 1,
        "databases": {
            "verified": {"dsn": tls_cluster.dsn() + "?sslmode=require"},
            "preferred": {"dsn": tls_cluster.dsn()},  # libpq's default sslmode: prefer
            "plain": {"dsn": pg_cluster.dsn()},
        },
        "healthChecks": [
            {"service": "secure-api", "type": "api", "endpoint": https_api.url("/health")},
            {"service": "plain-api", "type": "api", "endpoint": http_api.url("/health")},
            {"service": "lab-feed", "type": "api", "endpoint": http_api.url("/health")},
        ],
        "encryption": {
            "exempt": [
                {"target": "lab-feed", "justification": "vendor device, isolated VLAN, OPS-77"},
                {"target": "retired-api", "justification": "gone since 2025"},
            ]
        },
    }
    run = run_checks(pytester, config, "test_monthly_configuration.py::test_encryption_in_transit")
    result = run.checks["in-transit"]
    found = {f["description"].split(":", 1)[0]: f for f in result["findings"]}
    assert result["verdict"] == "violation"
    assert found["healthChecks plain-api"]["verdict"] == "violation"
    assert "is plain HTTP, without TLS" in found["healthChecks plain-api"]["description"]
    assert found["databases plain"]["verdict"] == "violation"
    assert "connected without TLS" in found["databases plain"]["description"]
    assert found["databases preferred"]["verdict"] == "degraded"
    assert "sslmode=prefer would fall back" in found["databases preferred"]["description"]
    assert "encryption.exempt names 'retired-api'" in "".join(found)
    assert set(found) == {
        "healthChecks plain-api",
        "databases plain",
        "databases preferred",
        "encryption.exempt names 'retired-api', which is no endpoint or connection of the config",
    }, found
    channels = {c["target"]: c for c in result["details"]["channels"]}
    assert channels["healthChecks lab-feed"]["problem"] == "is plain HTTP, without TLS"
    assert channels["databases verified"]["problem"] is None
    assert channels["healthChecks secure-api"]["problem"] is None
    assert tls_cluster.password not in run.result.stdout.str()
    assert "HIPAA 164.312(e)(2)(ii) encryption" in result["requirements"]


# ---------------------------------------------------------------------------- at rest


def age_encrypt(source: Path, target: Path, tmp: Path, *, armor: bool = False) -> None:
    key = tmp / f"key-{uuid.uuid4().hex}.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True, timeout=30)
    recipient = next(
        line.split(": ")[1] for line in key.read_text().splitlines() if "public key" in line
    )
    args = ["age", "-r", recipient, *(["-a"] if armor else []), "-o", str(target), str(source)]
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def gpg_encrypt(source: Path, target: Path, tmp: Path, *, armor: bool = False) -> None:
    home = tmp / f"gnupg-{uuid.uuid4().hex[:6]}"
    home.mkdir(mode=0o700)
    args = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
            "--passphrase", "demo only", "--symmetric", *(["--armor"] if armor else []),
            "-o", str(target), str(source)]  # fmt: skip
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@pytest.fixture
def backup_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir()
    plain = tmp_path / "dump.sql"
    plain.write_text("-- PostgreSQL database dump\nCREATE TABLE patients (id int);\n")
    age_encrypt(plain, folder / "clinical-1.dump.enc", tmp_path)
    age_encrypt(plain, folder / "clinical-2.dump.enc", tmp_path, armor=True)
    gpg_encrypt(plain, folder / "clinical-3.dump.enc", tmp_path)
    gpg_encrypt(plain, folder / "clinical-4.dump.enc", tmp_path, armor=True)
    with gzip.open(folder / "clinical-5.dump.enc", "wb") as f:  # named as if, never encrypted
        f.write(plain.read_bytes())
    return folder


def test_real_envelopes_recognised(backup_folder: Path) -> None:
    kinds = {p.name: file_envelope(p) for p in sorted(backup_folder.iterdir())}
    assert [e.kind for e in kinds.values()] == ["age", "age", "gpg", "gpg", "plain"]
    assert kinds["clinical-5.dump.enc"].what == "a gzip file"


def test_at_rest_end_to_end(pytester: pytest.Pytester, backup_folder: Path) -> None:
    config = {
        "version": 1,
        "backups": [{"name": "clinical-nightly", "kind": "files", "location": str(backup_folder),
                     "pattern": "clinical-*.dump.enc"}],
        "encryption": {"atRest": [{"backup": "clinical-nightly", "envelope": "age"}]},
    }  # fmt: skip
    run = run_checks(pytester, config, "test_monthly_configuration.py::test_encryption_at_rest")
    result = run.checks["clinical-nightly"]
    assert result["verdict"] == "violation"
    flagged = sorted(f["description"].split(": ")[1].split(" ")[0] for f in result["findings"])
    assert flagged == ["clinical-3.dump.enc", "clinical-4.dump.enc", "clinical-5.dump.enc"]
    assert any(
        "clinical-5.dump.enc is a gzip file, expected age encryption" in f["description"]
        for f in result["findings"]
    )
    assert result["metrics"] == {"files": 5, "unencrypted": 3}


def test_any_envelope_accepts_age_and_gpg(backup_folder: Path) -> None:
    made = Assessment()
    files = [file_envelope(p) for p in sorted(backup_folder.iterdir())]
    judge_backup_files(AtRest(name="nightly", backup="nightly"), files, made)
    assert [f.description for f in made.findings] == [
        "nightly: clinical-5.dump.enc is a gzip file, expected age or gpg encryption"
    ]


def test_pgbackrest_repositories(tmp_path: Path) -> None:
    conf = tmp_path / "pgbackrest.conf"
    conf.write_text(
        "[global]\nrepo1-path=/var/lib/pgbackrest\nrepo1-cipher-type=aes-256-cbc\n"
        "repo2-type=s3\nrepo2-path=/offsite\n\n[clinical]\npg1-path=/var/lib/postgresql/15/main\n"
    )
    made = Assessment()
    judge_repositories(AtRest(name="cluster"), pgbackrest_repositories(conf), made)
    assert [(f.verdict, f.description) for f in made.findings] == [
        (Verdict.VIOLATION,
         "cluster: pgBackRest repo2 has repo2-cipher-type = none, expected aes-256-cbc"),
    ]  # fmt: skip
    conf.write_text("[clinical]\npg1-path=/var/lib/postgresql/15/main\n")
    assert [(r.name, r.cipher) for r in pgbackrest_repositories(conf)] == [("repo1", "none")]


def test_encryption_config_errors(tmp_path: Path) -> None:
    from pytest_maintcheck.config import ConfigError, load_config

    path = tmp_path / "maintcheck.yaml"
    path.write_text("version: 1\nencryption: {atRest: [{backup: nightly}]}\n")
    with pytest.raises(ConfigError, match="no backups entry named 'nightly'"):
        load_config(path)
    path.write_text("version: 1\nencryption: {exempt: [{target: x}]}\n")
    with pytest.raises(ConfigError, match="justification"):
        load_config(path)
