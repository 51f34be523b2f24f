"""The plugin's own tests: pytester for plugin behaviour, the sandbox's real servers for probes."""

import pytest

pytest_plugins = ["pytester", "sandbox_fixtures"]


@pytest.fixture(autouse=True)
def _own_lock_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has its own run-lock folder: parallel tests running one config never collide."""
    monkeypatch.setenv("MAINTCHECK_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))
