"""One catalogue for every check: suites, compliance clauses and actions stay in step."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pytest_maintcheck.catalogue import CHECKS, SEVERITIES, SUITES

CHECKS_DIR = Path(__file__).parents[1] / "checks"


def check_functions() -> dict[str, tuple[str, str]]:
    """catalogue key -> (module, suite marker) for every check in checks/: the function's own
    suite marker, else its module's."""
    found: dict[str, tuple[str, str]] = {}
    for module in sorted(CHECKS_DIR.glob("test_*.py")):
        tree = ast.parse(module.read_text())
        suite = next(
            (
                node.value.attr
                for node in tree.body
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
                and isinstance(node.value, ast.Attribute)
            ),
            "",
        )
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            own = [
                d.attr
                for d in node.decorator_list
                if isinstance(d, ast.Attribute) and d.attr in SUITES
            ]
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "maintcheck"
                ):
                    key = deco.args[0]
                    assert isinstance(key, ast.Constant)
                    found[str(key.value)] = (module.name, own[0] if own else suite)
    return found


def test_every_check_is_in_the_catalogue_under_its_own_suite() -> None:
    found = check_functions()
    assert set(found) == set(CHECKS), "a check without an entry, or an entry without a check"
    for key, (module, suite) in found.items():
        assert CHECKS[key].suite == suite, (
            f"{module}: {key} is {CHECKS[key].suite} in the catalogue"
        )


@pytest.mark.parametrize("key", sorted(CHECKS))
def test_each_entry_is_complete(key: str) -> None:
    spec = CHECKS[key]
    assert spec.suite in SUITES
    assert spec.severity in SEVERITIES
    assert spec.incident_type in ("security", "performance", "availability")
    assert spec.action.endswith(".")
    assert spec.runbook
    assert any(r.startswith("HIPAA 164.") for r in spec.category.requirements)
    assert any(r.startswith("NIST SP 800-53 ") for r in spec.category.requirements)


def test_the_clauses_issue_5_names_are_all_evidenced() -> None:
    clauses = " | ".join(r for spec in CHECKS.values() for r in spec.category.requirements)
    for hipaa in (
        "164.308(a)(5)(ii)(C)",
        "164.312(a)(2)(iii)",
        "164.312(e)(1)",
        "164.308(a)(3)(ii)(C)",
        "164.312(b)",
        "164.308(a)(1)(ii)(B)",
        "164.308(a)(8)",
        "164.308(a)(7)",
    ):
        assert f"HIPAA {hipaa}" in clauses, hipaa
    for control in (
        "AC-2",
        "AC-7",
        "AC-12",
        "AU-6",
        "SC-8",
        "SC-17",
        "SI-2",
        "RA-5",
        "CP-9",
        "CP-4",
        "PL-2",
    ):
        assert f"NIST SP 800-53 {control} " in clauses + " ", control
