"""Security patches and encryption at rest judged in-process on constructed measurements
(pytest_maintcheck.judges.patches, .encryption); tests/test_security_patches.py and
tests/test_encryption.py prove the wiring against dpkg and real files."""

from __future__ import annotations

from pathlib import Path

from pytest_maintcheck.config_operations import AtRest, SecurityPatches
from pytest_maintcheck.judges.encryption import judge_at_rest
from pytest_maintcheck.judges.patches import judge_patch_level
from pytest_maintcheck.measuring import AtRestReading, PatchLevel
from pytest_maintcheck.probes.dependencies import Vulnerability
from pytest_maintcheck.probes.encryption import FileEnvelope, Repository
from pytest_maintcheck.probes.os_packages import PendingReboot
from pytest_maintcheck.verdict import Assessment, Verdict

FOLDER = Path("/srv/osv")


def _openssl(severity: str) -> Vulnerability:
    return Vulnerability(
        "openssl", "3.0.11-1", "DSA-0000-1", ("CVE-2024-0001",), severity, "3.0.13-1", "a flaw"
    )


def test_no_advisories_configured_is_degraded_not_a_clean_host() -> None:
    assessment = Assessment()
    judge_patch_level(SecurityPatches(), PatchLevel(reboot=None), assessment)
    assert assessment.verdict is Verdict.DEGRADED
    assert "securityPatches.advisories is not set" in assessment.findings[0].description


def test_an_empty_advisories_folder_could_not_measure() -> None:
    level = PatchLevel(None, "Debian:12", installed=300, advisories=0, folder=FOLDER)
    assessment = Assessment()
    judge_patch_level(SecurityPatches(advisories=FOLDER), level, assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert assessment.findings[0].description == f"no OSV advisories found in {FOLDER}"


def test_each_vulnerable_package_and_the_pending_reboot() -> None:
    level = PatchLevel(
        PendingReboot(("linux-image-amd64",)),
        "Debian:12",
        installed=300,
        advisories=12,
        vulnerable=(_openssl("HIGH"),),
        problems=("bad.json: not readable OSV JSON",),
        folder=FOLDER,
    )
    assessment = Assessment()
    judge_patch_level(SecurityPatches(advisories=FOLDER), level, assessment)
    by_verdict = {(f.verdict, f.severity) for f in assessment.findings}
    assert (Verdict.VIOLATION, "high") in by_verdict  # openssl
    assert (Verdict.DEGRADED, "medium") in by_verdict  # the reboot
    assert assessment.metrics["vulnerable"] == 1
    assert any("not readable OSV JSON" in f.description for f in assessment.findings)


def test_at_rest_files_and_repositories() -> None:
    files = AtRestReading(
        files=(
            FileEnvelope(Path("/b/a.dump.age"), "age", "age"),
            FileEnvelope(Path("/b/b.dump"), "plain", "a PostgreSQL custom dump"),
        )
    )
    assessment = Assessment()
    judge_at_rest(AtRest("nightly", backup="nightly"), files, assessment)
    [finding] = assessment.findings
    assert finding.description.startswith("nightly: b.dump is a PostgreSQL custom dump")

    repos = AtRestReading(repositories=(Repository("repo1", "global", ""),))
    assessment = Assessment()
    judge_at_rest(AtRest("pgbr", pgbackrest_config=Path("/etc/pgbackrest.conf")), repos, assessment)
    assert "repo1-cipher-type = none" in assessment.findings[0].description
