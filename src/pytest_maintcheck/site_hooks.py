"""pytest hooks for a site's own checks: their targets, and their declarations checked.

Registered by the plugin at configure time; the declarations and targets themselves are
plain Python in ``site.py``.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_maintcheck.catalogue import CHECKS
from pytest_maintcheck.config import ConfigError
from pytest_maintcheck.run import RunState
from pytest_maintcheck.site import InvalidDeclaration, SiteCheck, bind_target

SITE_TARGET = "site_target"


class SiteChecks:
    """Parametrizes ``site_target`` from ``siteChecks``; refuses faulty declarations."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.problems: list[str] = []  # found while collecting, reported when it ends
        self.first_of: dict[str, SiteCheck] = {}  # where each site check key was declared

    @pytest.hookimpl  # parametrizes only site_target, whoever else runs
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """A site check asking for ``site_target`` runs once per configured target."""
        if SITE_TARGET not in metafunc.fixturenames:
            return
        config = self.state.config
        marker = metafunc.definition.get_closest_marker("maintcheck")
        declared = marker.args[0] if marker is not None and marker.args else None
        if config is None or not isinstance(declared, SiteCheck):
            if config is not None and not isinstance(declared, InvalidDeclaration):
                self.problems.append(
                    f"{_where(metafunc.definition)}: the {SITE_TARGET} fixture is for checks "
                    "declared with pytest_maintcheck.api.site_check(...)"
                )
            # the plugin refuses the run when collection ends; until then, a placeholder
            metafunc.parametrize(SITE_TARGET, [pytest.param(None, id="no-config")])
            return
        key = declared.spec.key
        targets = config.site_checks.get(key, ())
        if not targets:
            reason = f"nothing to check: no siteChecks.{key} in {config.path.name}"
            skip = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="not-configured")
            metafunc.parametrize(SITE_TARGET, [skip])
            return
        try:
            bound = [bind_target(config.path, target, declared) for target in targets]
        except ConfigError as exc:
            self.problems.append(f"config error: {exc}")
            metafunc.parametrize(SITE_TARGET, [pytest.param(None, id="config-error")])
            return
        metafunc.parametrize(SITE_TARGET, bound, ids=[t.name for t in bound])

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # before any hook reads a catalogue entry
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        """A faulty or clashing declaration, or an unknown key, is a usage error (exit 4)."""
        problems = list(self.problems)
        valid = [item for item in items if self._valid(item, problems)]
        if problems:
            # pytest still ends collection (pytest_collection_finish) after this error: only
            # checks whose catalogue entry can be read are left for it
            items[:] = valid
            raise pytest.UsageError("maintcheck: " + "\nmaintcheck: ".join(dict.fromkeys(problems)))
        return (yield)

    def _valid(self, item: pytest.Item, problems: list[str]) -> bool:
        """Whether the item's ``maintcheck`` marker names one check; a fault goes to problems."""
        marker = item.get_closest_marker("maintcheck")
        if marker is None:
            return True
        declared = marker.args[0] if marker.args else None
        if isinstance(declared, SiteCheck):
            first = self.first_of.setdefault(declared.spec.key, declared)
            if first is declared:
                return True
            problems.append(
                f"{declared.location}: site check {declared.spec.key!r} is declared "
                f"twice (also at {first.location}); give each check its own key"
            )
        elif isinstance(declared, InvalidDeclaration):
            problems.append(str(declared.error))
        elif isinstance(declared, str) and declared in CHECKS:
            return True
        else:
            problems.append(
                f"{_where(item)}: check {declared!r} is not in the catalogue; declare "
                "a site check with pytest_maintcheck.api.site_check(...)"
            )
        return False


def _where(item: pytest.Item) -> str:
    path, line, _name = item.reportinfo()
    return f"{path}:{(line or 0) + 1}"
