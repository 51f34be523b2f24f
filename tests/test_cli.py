"""The `maintcheck` command: validate, schema, run from any folder, and the demo sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from check_runs import MAINTCHECK, maintcheck, read_record, run_dirs
from pytest_maintcheck.sandbox import SandboxApi, port_is_open


def test_validate_says_valid_or_exits_4(tmp_path: Path) -> None:
    (tmp_path / "maintcheck.yaml").write_text("version: 1\nhealthChecks: []\n")
    ok = maintcheck("validate", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    (tmp_path / "bad.yaml").write_text("version: 1\ndatabses: {}\n")
    bad = maintcheck("validate", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 4
    assert bad.stderr.strip() == (
        "maintcheck: config error: bad.yaml:2: databses: unknown key; did you mean 'databases'?"
    )


def test_schema_is_printed(tmp_path: Path) -> None:
    out = maintcheck("schema", cwd=tmp_path)
    assert json.loads(out.stdout)["required"] == ["version"]


def test_run_uses_the_folder_config_from_anywhere(tmp_path: Path, https_api: SandboxApi) -> None:
    config = {
        "version": 1,
        "healthChecks": [
            {
                "service": "api",
                "type": "api",
                "endpoint": https_api.url("/health"),
                "caFile": str(https_api.ca_file),
            }
        ],
    }
    (tmp_path / "maintcheck.yaml").write_text(yaml.safe_dump(config))
    out = maintcheck(
        "run", "-m", "daily", "-k", "test_health", "-p", "no:cacheprovider", cwd=tmp_path
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    (run,) = run_dirs(tmp_path / "reports")
    assert (run / "report.html").is_file()


def test_run_without_a_config_is_a_usage_error(tmp_path: Path) -> None:
    out = maintcheck("run", "-m", "daily", cwd=tmp_path)
    assert out.returncode == 4
    assert "maintcheck.yaml not found" in out.stderr


SERVICE_PORT = r"(?:PostgreSQL on |API on https://)127\.0\.0\.1:(\d+)"


def _sandbox_dir(output: str) -> Path:
    """The demo's own work folder, as it announced it: other demos may run beside it."""
    found = re.search(r"starting the sandbox in (\S+)", output)
    assert found, output[-3000:]
    return Path(found.group(1))


def test_demo_runs_the_daily_suite_on_real_parts_and_cleans_up(tmp_path: Path) -> None:
    out = maintcheck("demo", "--suite", "daily", "--report-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "r")  # the made-up weeks are in the history store only
    assert "maintcheck demo: seeded 21 days of history" in out.stdout
    assert f"maintcheck demo: monthly review: {tmp_path / 'r'}/review-" in out.stdout
    health = read_record(run, "health.json")
    assert {h["type"] for h in health} == {"api", "database", "storage", "authentication"}
    assert (run / "report.html").is_file()
    assert f"maintcheck demo: report: {run / 'report.html'}" in out.stdout
    workdir = _sandbox_dir(out.stdout)
    assert workdir.name.startswith("maintcheck-demo-")
    assert not workdir.exists()  # the sandbox folder is gone
    password_line = [ln for ln in out.stdout.splitlines() if "PGPASSWORD" in ln]
    assert password_line == []


@pytest.mark.skipif(os.name != "posix", reason="signals are POSIX")
def test_demo_removes_everything_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*MAINTCHECK, "demo", "--suite", "daily", "--report-dir", str(tmp_path / "r")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    workdir = None
    ports: list[int] = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        found = re.search(r"starting the sandbox in (\S+)", line)
        if found:
            workdir = Path(found.group(1))
        ports += [int(p) for p in re.findall(SERVICE_PORT, line)]
        if "running" in line or time.monotonic() > deadline:
            break
    assert workdir is not None
    assert workdir.exists()
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert not workdir.exists(), rest
    assert len(ports) == 2
    assert not [p for p in ports if port_is_open("127.0.0.1", p)]  # server and API stopped
