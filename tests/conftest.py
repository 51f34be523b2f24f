"""The plugin's own tests: pytester for plugin behaviour, the sandbox's real servers for probes."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester", "sandbox_fixtures", "physical_fixtures"]

# installed beside the plugin (dev extras) to test living with them; inner runs leave them out
# unless a test asks for them: pytest-randomly reorders tests, pytest-sugar rewrites the output
OTHER_PLUGINS_OFF = "-p no:randomly -p no:sugar"


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester clears PYTEST_ADDOPTS; inner runs get only the plugins a test means to run."""
    monkeypatch.setenv("PYTEST_ADDOPTS", OTHER_PLUGINS_OFF)
    return pytester


@pytest.fixture(autouse=True)
def _own_lock_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has its own run-lock folder: parallel tests running one config never collide."""
    monkeypatch.setenv("MAINTCHECK_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))
