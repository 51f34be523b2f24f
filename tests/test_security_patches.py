"""Monthly security patches: this machine's real dpkg database against OSV advisories written
for the test about packages really installed here, a reboot flag, and the test PostgreSQL's
minor release. Nothing is asserted about this machine's real patch level: every advisory the
tests judge is one they wrote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from check_runs import run_checks
from pytest_maintcheck.config import load_config
from pytest_maintcheck.probes.os_packages import (
    InstalledPackage,
    PackageProbeError,
    ecosystem_matches,
    installed_packages,
    os_ecosystem,
    pending_reboot,
    vulnerable_packages,
)
from pytest_maintcheck.rules.patches import judge_server_version
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from pytest_maintcheck.verdict import Assessment, Verdict


def real_package(name: str = "bash") -> InstalledPackage:
    """An installed package as dpkg itself reports it (bash is Essential on Debian/Ubuntu)."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${source:Package}\\t${source:Version}", name],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split("\t")  # fmt: skip
    return InstalledPackage(name, out[1], out[0], out[1])


def advisory(ident: str, ecosystem: str, package: str, events: list[dict[str, str]],
             **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "id": ident,
        "summary": f"test advisory {ident}",
        "affected": [{"package": {"ecosystem": ecosystem, "name": package},
                      "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
        **extra,
    }  # fmt: skip


def write_advisories(folder: Path, *items: dict[str, Any]) -> Path:
    folder.mkdir(exist_ok=True)
    for item in items:
        (folder / f"{item['id']}.json").write_text(json.dumps(item))
    return folder


def test_installed_packages_are_dpkgs_own() -> None:
    packages = {p.name: p for p in installed_packages()}
    bash = real_package()
    assert packages["bash"].source == bash.source
    assert packages["bash"].source_version == bash.source_version
    # a binary whose source differs is listed under its source (libc6 comes from glibc)
    libc = next((p for p in packages.values() if p.name == "libc6"), None)
    if libc is not None:
        assert libc.source == "glibc"


def test_advisories_judged_in_dpkg_version_order() -> None:
    bash = real_package()
    ours = os_ecosystem()
    later = bash.source_version + "+maintcheck1"  # dpkg orders this after the installed one
    items = [
        advisory("TEST-AFFECTED", ours, bash.source, [{"introduced": "0"}, {"fixed": later}],
                 aliases=["CVE-2099-0001"], database_specific={"severity": "HIGH"}),
        advisory("TEST-FIXED", ours, bash.source,
                 [{"introduced": "0"}, {"fixed": bash.source_version}]),
        advisory("TEST-OTHER-RELEASE", "Debian:7", bash.source,
                 [{"introduced": "0"}, {"fixed": later}]),
        advisory("TEST-NOT-INSTALLED", ours, "maintcheck-no-such-package",
                 [{"introduced": "0"}]),
        advisory("TEST-TILDE", ours, bash.source,  # ~ sorts before anything: already fixed
                 [{"introduced": "0"}, {"fixed": bash.source_version.split("-")[0] + "~rc1"}]),
    ]  # fmt: skip
    found = vulnerable_packages(installed_packages(), items, ours)
    assert [(v.advisory, v.package, v.fixed) for v in found] == [
        ("TEST-AFFECTED", bash.source, later)
    ]
    assert found[0].severity == "HIGH"


def test_os_release_and_ubuntu_ecosystems(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n')
    assert os_ecosystem(release) == "Ubuntu:22.04"
    assert ecosystem_matches("Ubuntu:22.04:LTS", "Ubuntu:22.04")
    assert not ecosystem_matches("Ubuntu:Pro:22.04:LTS", "Ubuntu:22.04")
    assert not ecosystem_matches("Ubuntu:20.04:LTS", "Ubuntu:22.04")
    release.write_text("ID=fedora\nVERSION_ID=40\n")
    with pytest.raises(PackageProbeError, match=r"set securityPatches\.ecosystem"):
        os_ecosystem(release)


def test_reboot_flag(tmp_path: Path) -> None:
    flag = tmp_path / "reboot-required"
    assert pending_reboot(flag) is None
    flag.write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.1.0-99-amd64\nlibc6\nlibc6\n")
    pending = pending_reboot(flag)
    assert pending is not None
    assert pending.packages == ("linux-image-6.1.0-99-amd64", "libc6")


def test_check_end_to_end(pytester: pytest.Pytester, tmp_path: Path) -> None:
    bash = real_package()
    later = bash.source_version + "+maintcheck1"
    folder = write_advisories(
        tmp_path / "osv",
        advisory("DSA-TEST-1", os_ecosystem(), bash.source, [{"introduced": "0"}, {"fixed": later}],
                 aliases=["CVE-2099-0001"]),
        advisory("USN-TEST-2", os_ecosystem(), bash.source, [{"introduced": "0"}, {"fixed": later}],
                 severity=[{"type": "Ubuntu", "score": "negligible"}]),
    )  # fmt: skip
    flag = tmp_path / "reboot-required"
    flag.write_text("*** System restart required ***\n")
    config = {"version": 1, "securityPatches": {"advisories": str(folder), "rebootFlag": str(flag)}}
    run = run_checks(pytester, config, "test_monthly_patches.py")
    result = run.checks["local-packages"]
    assert result["verdict"] == "violation"
    by_text = {f["description"].split(" is affected by ")[-1][:10]: f for f in result["findings"]}
    first = by_text["DSA-TEST-1"]
    assert first["verdict"] == "violation"
    assert f"source package {bash.source} {bash.source_version}" in first["description"]
    assert first["action"].startswith(f"Upgrade {bash.source} to {later} or later")
    negligible = by_text["USN-TEST-2"]
    assert negligible["verdict"] == "degraded"
    assert negligible["severity"] == "low"
    assert any(f["description"].startswith("a reboot is pending") for f in result["findings"])
    assert result["metrics"]["vulnerable"] == 1
    assert result["metrics"]["packages"] > 10
    assert "HIPAA 164.308(a)(1)(ii)(B) risk management" in result["requirements"]


def test_postgres_minor_release(
    pytester: pytest.Pytester,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test server's real version against a minimum one above and one at it."""
    with pg_db.connect() as conn:
        num = int(str(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
    major, minor = num // 10000, num % 10000
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    config = {
        "version": 1,
        "databases": {"primary": {"dsn": pg_cluster.dsn(pg_db.name)},
                      "replica": {"dsn": pg_cluster.dsn(pg_db.name)}},
        "configReview": [{"database": "primary"}, {"database": "replica"}],
        "securityPatches": {"minimumVersions": {str(major): f"{major}.{minor + 1}"}},
    }  # fmt: skip
    run = run_checks(pytester, config, "test_monthly_patches.py::test_postgres_version")
    result = run.checks["primary"]
    assert result["verdict"] == "violation"
    assert f"PostgreSQL {major}.{minor} (" in result["message"]
    assert f"older than the minimum {major}.{minor + 1}" in result["message"]
    made = Assessment()
    judge_server_version("primary", num, "x", {str(major): f"{major}.{minor}"}, made)
    assert made.verdict is Verdict.PASS
    judge_server_version("primary", num, "x", {"99": "99.1"}, made)
    assert made.verdict is Verdict.DEGRADED
    assert 'Add "' in made.findings[0].action


def test_security_patches_config_errors(tmp_path: Path) -> None:
    from pytest_maintcheck.config import ConfigError

    path = tmp_path / "maintcheck.yaml"
    path.write_text("version: 1\nsecurityPatches: {minimumVersions: {'15': '16.1'}}\n")
    with pytest.raises(ConfigError, match=r"16.1 is not a 15 release"):
        load_config(path)
    path.write_text("version: 1\nsecurityPatches: {advisory: osv/}\n")
    with pytest.raises(ConfigError, match="did you mean 'advisories'"):
        load_config(path)
