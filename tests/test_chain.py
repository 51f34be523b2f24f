"""The tamper-evident chain of MaintenanceLogs and `maintcheck verify` (issue 12, point 5).

Real runs (a pytest subprocess running the daily storage check against a local folder) write
real run folders; the tests then edit, delete and swap them as an intruder would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from check_runs import CHECKS, pytest_run, run_dirs
from pytest_maintcheck.cli import main


def _config(site: Path, system: str = "Cardiology", **extra: object) -> Path:
    (site / "data").mkdir(exist_ok=True)
    config = {
        "version": 1,
        "system": system,
        "environment": "production",
        "healthChecks": [{"service": "scratch", "type": "storage", "endpoint": "data"}],
        **extra,
    }
    path = site / f"{system}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(site: Path, config: Path, env: dict[str, str] | None = None) -> Path:
    """One real daily run; returns its run folder."""
    before = set(run_dirs(site / "reports"))
    done = pytest_run(
        site,
        config,
        "test_daily_health.py",
        report_dir=site / "reports",
        args=["-m", "daily"],
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (new,) = set(run_dirs(site / "reports")) - before
    return new


def _log(run: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((run / "maintenance-log.json").read_text())
    return loaded


def _verify(site: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["verify", "--report-dir", str(site / "reports"), *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.fixture(scope="module")
def chained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Four runs of one system, with a run of another system in between."""
    site = tmp_path_factory.mktemp("chain")
    cardiology, radiology = _config(site), _config(site, "Radiology")
    runs = [_run(site, cardiology), _run(site, cardiology)]
    _run(site, radiology)  # another system: its own chain, skipped by this one
    runs += [_run(site, cardiology), _run(site, cardiology)]
    return site, runs


def _copy(chained: tuple[Path, list[Path]], tmp_path: Path) -> tuple[Path, list[Path]]:
    site, runs = chained
    shutil.copytree(site / "reports", tmp_path / "reports")
    return tmp_path, [tmp_path / "reports" / r.name for r in runs]


def test_each_log_carries_the_previous_logs_hash_and_a_manifest(
    chained: tuple[Path, list[Path]],
) -> None:
    _site, runs = chained
    first, *rest = runs
    assert _log(first)["previousHash"] is None
    assert _log(first)["sequence"] == 1
    for before, run in zip(runs, rest, strict=False):
        log = _log(run)
        assert log["previousRun"] == before.name  # the Radiology run in between is skipped
        expected = hashlib.sha256((before / "maintenance-log.json").read_bytes()).hexdigest()
        assert log["previousHash"] == expected
    manifest = _log(runs[0])["manifest"]
    assert isinstance(manifest, dict)
    assert {"health.json", "results.json", "report.html"} <= set(manifest)
    digest = hashlib.sha256((runs[0] / "health.json").read_bytes()).hexdigest()
    assert manifest["health.json"] == digest


def test_an_untouched_chain_verifies(
    chained: tuple[Path, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    site, _runs = chained
    status, out = _verify(site, capsys)
    assert status == 0, out
    assert "Cardiology / production: intact, 4 run(s)" in out
    assert "Radiology / production: intact, 1 run(s)" in out


def test_an_edited_record_names_its_run(
    chained: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, runs = _copy(chained, tmp_path)
    health = runs[1] / "health.json"
    health.write_text(health.read_text().replace('"healthy"', '"down"'))
    status, out = _verify(site, capsys)
    assert status == 1
    assert f"Cardiology / production: BROKEN at run {runs[1].name}: " in out
    assert "health.json altered" in out


def test_an_edited_log_names_its_run(
    chained: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, runs = _copy(chained, tmp_path)
    log = _log(runs[2])
    log["status"] = "completed" if log["status"] != "completed" else "partial"
    (runs[2] / "maintenance-log.json").write_text(json.dumps(log, indent=2))
    status, out = _verify(site, capsys)
    assert status == 1
    assert f"BROKEN at run {runs[2].name}: " in out
    assert "maintenance-log.json altered" in out


def test_a_deleted_run_is_named(
    chained: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, runs = _copy(chained, tmp_path)
    shutil.rmtree(runs[1])
    status, out = _verify(site, capsys)
    assert status == 1
    assert f"BROKEN at run {runs[1].name}: " in out
    assert "removed" in out


def test_swapped_runs_are_named(
    chained: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, runs = _copy(chained, tmp_path)
    parked = runs[1].with_name("parked")
    runs[1].rename(parked)
    runs[2].rename(runs[1])
    parked.rename(runs[2])
    status, out = _verify(site, capsys)
    assert status == 1
    assert f"BROKEN at run {runs[2].name}: run {runs[2].name}: holds the log of run " in out
    assert "swapped" in out


def test_deleting_the_oldest_runs_is_found_unless_pruned_on_purpose(
    chained: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, runs = _copy(chained, tmp_path)
    shutil.rmtree(runs[0])
    status, out = _verify(site, capsys)
    assert status == 1
    assert f"BROKEN at run {runs[0].name}: " in out
    status, out = _verify(site, capsys, "--since", runs[1].name)
    assert status == 0, out


def _key(path: Path, mode: int = 0o600) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(mode)
    return key


def test_signed_logs_say_which_key_signed_and_catch_an_edit_of_the_newest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _key(tmp_path / "signing.pem")
    config = _config(tmp_path, signing={"keyFile": "signing.pem"})
    runs = [_run(tmp_path, config), _run(tmp_path, config)]
    signature = _log(runs[1])["signature"]
    assert isinstance(signature, dict)
    assert signature["algorithm"] == "Ed25519"
    status, out = _verify(tmp_path, capsys, "--config", str(config))
    assert status == 0, out
    assert f"2 signed by key {signature['keyId']} (the configured key (file " in out
    # the newest run has no successor whose hash covers it: only its signature does
    log = _log(runs[1])
    log["details"] = {"actions": [], "findings": [], "followUp": []}
    (runs[1] / "maintenance-log.json").write_text(json.dumps(log, indent=2))
    status, out = _verify(tmp_path, capsys, "--config", str(config))
    assert status == 1
    assert f"BROKEN at run {runs[1].name}: " in out
    assert "signature does not match its log" in out


def test_a_signature_by_an_untrusted_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _key(tmp_path / "signing.pem")
    other = _key(tmp_path / "auditor.pem")
    public = tmp_path / "auditor.pub"
    public.write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = _config(tmp_path, signing={"keyFile": "signing.pem"})
    run = _run(tmp_path, config)
    status, out = _verify(tmp_path, capsys, "--public-key", str(public))
    assert status == 1
    signature = _log(run)["signature"]
    assert isinstance(signature, dict)
    assert f"signed by key {signature['keyId']}, which is not a trusted key" in out


def test_a_key_file_others_can_read_is_refused_before_any_check_runs(tmp_path: Path) -> None:
    _key(tmp_path / "signing.pem", mode=0o644)
    config = _config(tmp_path, signing={"keyFile": "signing.pem"})
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
            "--maintcheck-config", str(config), "--maintcheck-report-dir",
            str(tmp_path / "reports"), str(CHECKS / "test_daily_health.py"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 4
    assert "signing.keyFile" in done.stderr
    assert "chmod 600" in done.stderr
    assert run_dirs(tmp_path / "reports") == []


def test_a_key_from_the_environment_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _key(tmp_path / "k.pem")
    pem = (tmp_path / "k.pem").read_text()
    (tmp_path / "k.pem").unlink()
    config = _config(tmp_path, signing={"keyEnv": "MAINTCHECK_SIGNING_KEY"})
    run = _run(tmp_path, config, env={"MAINTCHECK_SIGNING_KEY": pem})
    signature = _log(run)["signature"]
    assert isinstance(signature, dict)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signature["keyId"] == "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]
    assert pem.splitlines()[1] not in (run / "maintenance-log.json").read_text()


def test_verify_usage_errors_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--report-dir", str(tmp_path / "none")]) == 4
    (tmp_path / "reports").mkdir()
    missing = str(tmp_path / "missing.yaml")
    assert main(["verify", "--report-dir", str(tmp_path / "reports"), "--config", missing]) == 4
    assert main(["verify", "--no-such-option"]) == 4
    with pytest.raises(SystemExit) as bad:
        main(["verify", "--since"])  # an option without its value
    assert bad.value.code == 4
    assert "maintcheck verify" in capsys.readouterr().err
