"""pytest-maintcheck: a clinical system's maintenance procedures as pytest checks."""

from __future__ import annotations

__version__ = "0.1.0"
