"""The bundled checks use only the public API (issue 9 point 3): pytest, the standard library
and pytest_maintcheck.api, whose names a site's own checks use too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from pytest_maintcheck import api

CHECKS = Path(__file__).resolve().parent.parent / "checks"
# every module of checks/ is held to the rule; name one here only while it is being moved
PENDING: set[str] = set()
MODULES = sorted(p.name for p in CHECKS.glob("test_*.py") if p.name not in PENDING)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, at any depth."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(("." * node.level + (node.module or ""), [a.name for a in node.names]))
    return found


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    return module in ("pytest", "pytest_maintcheck.api", "__future__") or (
        top in sys.stdlib_module_names and top != "pytest_maintcheck"
    )


@pytest.mark.parametrize("module", MODULES)
def test_a_bundled_check_imports_nothing_private(module: str) -> None:
    imports = _imports(CHECKS / module)
    assert any(m == "pytest_maintcheck.api" for m, _ in imports), module
    private = [m for m, _ in imports if not _allowed(m)]
    assert private == [], f"{module} imports {private}: re-export what it needs in api.py"
    from_api = {n for m, names in imports if m == "pytest_maintcheck.api" for n in names}
    assert from_api <= set(api.__all__), from_api - set(api.__all__)


def test_the_rule_sees_a_private_import() -> None:
    """The check above would catch what it is for: a probe imported straight from its module."""
    assert not _allowed("pytest_maintcheck.probes.certificates")
    assert not _allowed("pytest_maintcheck.verdict")
    assert _allowed("datetime")
    assert _allowed("pytest_maintcheck.api")


def test_every_public_name_resolves_and_the_lazy_ones_are_listed() -> None:
    """The names imported on first use are in __all__, and each one imports."""
    lazy = set(api._CHECKS_API)
    assert lazy <= set(api.__all__)
    for name in sorted(api.__all__):
        assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        api.__getattr__("no_such_name")


def test_every_module_of_the_suite_is_checked() -> None:
    """A new module in checks/ is held to the rule unless it is named as pending."""
    assert {p.name for p in CHECKS.glob("test_*.py")} >= PENDING
    assert len(MODULES) + len(PENDING) == len(list(CHECKS.glob("test_*.py")))


def test_every_exported_name_resolves() -> None:
    """The api's blocks are imported on first use: a name in __all__ with no home fails here."""
    missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert missing == []
    assert len(api.__all__) == len(set(api.__all__))
    with pytest.raises(AttributeError, match="no attribute 'judge_nothing'"):
        api.judge_nothing  # noqa: B018
