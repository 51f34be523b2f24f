"""The `maintcheck` command (issue 8, points 24 and 25): --version, run --help, no abbreviations,
the local pytest ini, a closed pipe, waivers naming no check, and validate --online against
real parts (PostgreSQL, an HTTPS API with its own CA, files)."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from check_runs import MAINTCHECK, maintcheck
from pytest_maintcheck import __version__
from pytest_maintcheck.sandbox import SandboxApi
from pytest_maintcheck.sandbox.postgres import PostgresCluster


def _config(folder: Path, config: dict[str, object]) -> None:
    (folder / "maintcheck.yaml").write_text(yaml.safe_dump({"version": 1, **config}))


# ---------------------------------------------------------------------------- point 24


def test_version_is_printed(tmp_path: Path) -> None:
    out = maintcheck("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.strip() == f"maintcheck {__version__}"


def test_run_help_says_arguments_pass_to_pytest_and_lists_markers_and_exit_codes(
    tmp_path: Path,
) -> None:
    out = maintcheck("run", "--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "Every other argument goes to pytest" in out.stdout
    for marker in ("daily", "weekly", "monthly"):
        assert f"\n  {marker} " in out.stdout
    for status in range(6):
        assert f"\n  {status}  " in out.stdout


def test_run_co_is_pytests_collect_only_not_an_abbreviated_config(tmp_path: Path) -> None:
    _config(tmp_path, {})
    out = maintcheck("run", "--co", "-q", "-m", "daily", "-p", "no:cacheprovider", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_daily_health.py::test_health[not-configured]" in out.stdout
    assert "skipped" not in out.stdout  # listed, not run


def test_run_honours_the_pytest_ini_of_the_folder_it_runs_from(tmp_path: Path) -> None:
    _config(tmp_path, {})
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --collect-only -q\n")
    out = maintcheck("run", "-m", "daily", "-p", "no:cacheprovider", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_daily_health.py::test_health[not-configured]" in out.stdout
    assert "skipped" not in out.stdout


def test_run_honours_pyproject_ini_options(tmp_path: Path) -> None:
    _config(tmp_path, {})
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nmaintcheck_report_dir = "audit"\n'
    )
    out = maintcheck("run", "-m", "daily", "-p", "no:cacheprovider", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "skipped" in out.stdout
    assert [p.name for p in (tmp_path / "audit").iterdir() if p.is_dir()]
    assert not (tmp_path / "reports").exists()


def test_schema_into_a_closed_pipe_ends_without_a_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `head` does once it has its lines
    try:
        out = subprocess.run(
            [*MAINTCHECK, "schema"],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert out.stderr == ""
    assert out.returncode == 141


# ---------------------------------------------------------------------------- waivers (offline)


def _waivers(*checks: str) -> dict[str, object]:
    return {
        "certificates": [{"name": "legacy-fax-gateway", "host": "127.0.0.1:9"}],
        "waivers": [
            {"check": check, "justification": "vendor replacing it", "expires": "2099-01-31"}
            for check in checks
        ],
    }


def test_validate_refuses_a_waiver_naming_no_check_or_no_target(tmp_path: Path) -> None:
    _config(tmp_path, _waivers("test_certificate[legacy-fax-gateway]"))
    assert maintcheck("validate", cwd=tmp_path).returncode == 0
    _config(
        tmp_path,
        _waivers("test_certficate[legacy-fax-gateway]", "test_certificate[legacy-fax-gatway]"),
    )
    out = maintcheck("validate", cwd=tmp_path)
    assert out.returncode == 4
    assert out.stderr.splitlines() == [
        "maintcheck: config error: maintcheck.yaml: waivers[0].check: "
        "'test_certficate[legacy-fax-gateway]' names no check; did you mean 'test_certificate'?",
        "maintcheck: config error: maintcheck.yaml: waivers[1].check: "
        "'test_certificate[legacy-fax-gatway]': no target 'legacy-fax-gatway' is configured; "
        "did you mean 'legacy-fax-gateway'?",
    ]


def test_validate_knows_the_operators_own_checks_beside_the_config(tmp_path: Path) -> None:
    _config(tmp_path, _waivers("test_our_interface[legacy-fax-gateway]"))
    assert maintcheck("validate", cwd=tmp_path).returncode == 4
    (tmp_path / "test_ours.py").write_text("def test_our_interface():\n    pass\n")
    assert maintcheck("validate", cwd=tmp_path).returncode == 0


def test_a_run_names_a_waiver_for_a_check_that_does_not_exist(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        maintcheck=yaml.safe_dump(
            {"version": 1, **_waivers("test_certficate[legacy-fax-gateway]")}
        ),
    )
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert (
        "maintcheck: maintcheck.yaml: waivers[0].check: 'test_certficate[legacy-fax-gateway]' "
        "names no check; did you mean 'test_certificate'?"
    ) in result.stdout.lines
    assert result.ret == 0  # reported, not fatal: the run may be one of several selections


# ---------------------------------------------------------------------------- point 25: online


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def plain_role(pg_cluster: PostgresCluster) -> Iterator[str]:
    name = f"plain_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_role(name, "plain-pw")
    try:
        yield name
    finally:
        pg_cluster.drop_role(name)


def _online_config(
    tmp_path: Path, pg_cluster: PostgresCluster, https_api: SandboxApi, role: str | None
) -> dict[str, object]:
    auth_log = tmp_path / "auth.jsonl"
    auth_log.write_text("")
    return {
        "databases": {"primary": {"dsn": pg_cluster.dsn(user=role)}},
        "healthChecks": [
            {
                "service": "api",
                "type": "api",
                "endpoint": https_api.url("/health"),
                "caFile": str(https_api.ca_file),
            }
        ],
        "certificates": [{"name": "api", "host": f"127.0.0.1:{https_api.port}"}],
        "securityMonitoring": {
            "authLog": {"file": str(auth_log)},
            "sessions": {"database": "primary"},
        },
    }


def _pgpass(tmp_path: Path, pg_cluster: PostgresCluster, role: str) -> dict[str, str]:
    path = tmp_path / "pgpass"
    path.write_text(f"*:*:*:{pg_cluster.superuser}:{pg_cluster.password}\n*:*:*:{role}:plain-pw\n")
    path.chmod(0o600)
    return {"PGPASSFILE": str(path)}


def test_validate_online_passes_when_every_target_answers(
    tmp_path: Path, pg_cluster: PostgresCluster, https_api: SandboxApi, plain_role: str
) -> None:
    _config(tmp_path, _online_config(tmp_path, pg_cluster, https_api, None))
    out = maintcheck(
        "validate", "--online", cwd=tmp_path, env=_pgpass(tmp_path, pg_cluster, plain_role)
    )
    assert out.returncode == 0, out.stderr
    assert "every target answered" in out.stdout


def test_validate_online_names_each_problem_on_one_line(
    tmp_path: Path, pg_cluster: PostgresCluster, https_api: SandboxApi, plain_role: str
) -> None:
    config = _online_config(tmp_path, pg_cluster, https_api, plain_role)
    closed = _closed_port()
    config["healthChecks"][0]["endpoint"] = f"https://127.0.0.1:{closed}/health"  # type: ignore[index]
    config["certificates"].append({"name": "gone", "host": f"127.0.0.1:{closed}"})  # type: ignore[attr-defined]
    config["policies"] = [
        {"name": "Access control", "file": str(tmp_path / "missing.md"), "reviewEvery": "365d"}
    ]
    _config(tmp_path, config)
    out = maintcheck(
        "validate", "--online", cwd=tmp_path, env=_pgpass(tmp_path, pg_cluster, plain_role)
    )
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert "Traceback" not in out.stderr
    assert lines == [
        f"maintcheck: policies[0].file: {tmp_path / 'missing.md'}: No such file or directory "
        "(a file is needed)",
        f"maintcheck: databases.primary: role {plain_role} cannot see other sessions; "
        "databaseMaintenance and sessions need pg_read_all_stats "
        f"(GRANT pg_read_all_stats TO {plain_role})",
        f"maintcheck: healthChecks[0] https://127.0.0.1:{closed}/health: connection refused",
        f"maintcheck: certificates[1]: TLS handshake with 127.0.0.1:{closed} failed: "
        "connection refused: nothing listens on that port",
    ]
