"""The bundled examples/maintcheck.yaml, loadable by any test whatever ${VAR}s it grows."""

from __future__ import annotations

from pathlib import Path

from pytest_maintcheck.config.loading import _VAR

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "maintcheck.yaml"


def example_variables() -> set[str]:
    """The ${VAR}s the example needs from the environment: those written without a :-default."""
    text = EXAMPLE.read_text(encoding="utf-8")
    return {m.group(1) for m in _VAR.finditer(text) if m.group(1) and m.group(2) is None}


def example_environ(**chosen: str) -> dict[str, str]:
    """An environment that sets every variable the example needs: chosen values for the ones a
    test looks for, a harmless unroutable URL (.invalid never resolves) for the rest."""
    needed = example_variables()
    unknown = set(chosen) - needed
    assert not unknown, f"examples/maintcheck.yaml no longer uses {sorted(unknown)}"
    return {name: chosen.get(name, f"json://{name.lower()}.invalid/x") for name in needed}
