"""Hostile YAML (issue 8, point 19): an alias bomb or deep nesting is one config error, exit 4,
within bounded memory and time, for `validate` and for a run."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest

from check_runs import maintcheck
from pytest_maintcheck.config import MAX_NESTING, MAX_VALUES, ConfigError, load_config

MEMORY_CAP = 1024 * 1024 * 1024  # the bomb below expands to ~390 million values: far past this

ALIAS_BOMB = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{new}: &{new} [{', '.join([f'*{old}'] * 9)}]\n"
    for old, new in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP = "version: 1\nhealthChecks: " + "[" * 5000 + "]" * 5000 + "\n"


def _capped_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _maintcheck(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command under a memory cap: a config that blows up must not take the machine."""
    return maintcheck(*args, cwd=cwd, timeout=120, preexec_fn=_capped_memory)


def test_an_alias_bomb_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(ALIAS_BOMB)
    with pytest.raises(ConfigError, match=f"more than {MAX_VALUES} values once aliases"):
        load_config(path)


def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(DEEP)
    with pytest.raises(ConfigError, match=f"maintcheck.yaml:2: nested deeper than {MAX_NESTING}"):
        load_config(path)


def test_aliases_of_an_ordinary_config_still_work(tmp_path: Path) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(
        "version: 1\n"
        "databases: {a: {dsn: 'postgresql://maint@db/a'}, b: {dsn: 'postgresql://maint@db/b'}}\n"
        "databaseMaintenance:\n"
        "  - {database: a, thresholds: &t {deadTupleRatio: {warn: 0.1, fail: 0.3}}}\n"
        "  - {database: b, thresholds: *t}\n"
    )
    first, second = load_config(path).database_maintenance
    assert second.thresholds.get("deadTupleRatio") == first.thresholds.get("deadTupleRatio")


@pytest.mark.parametrize("text", [ALIAS_BOMB, DEEP], ids=["alias-bomb", "deep-nesting"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_validate_and_run_end_with_one_line_and_exit_4(
    tmp_path: Path, text: str, command: str
) -> None:
    (tmp_path / "maintcheck.yaml").write_text(text)
    args = ["run", "-m", "daily", "-p", "no:cacheprovider"] if command == "run" else ["validate"]
    out = _maintcheck(tmp_path, *args)
    assert out.returncode == 4, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "INTERNALERROR" not in out.stdout + out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "config error" in ln]
    assert len(lines) == 1, out.stderr
    assert "maintcheck.yaml:" in lines[0]
