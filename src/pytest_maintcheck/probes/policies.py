"""When a policy document was last reviewed: from the config, or the file's front matter.

Front matter is a block between two ``---`` lines at the very top of the file; the line read is
``last_reviewed: 2025-03-01`` (quotes allowed). ``lastReviewed`` in the config wins over it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_maintcheck.redact import printable

_LAST_REVIEWED = re.compile(r"^last_reviewed\s*:\s*['\"]?([^'\"#\s]+)['\"]?\s*(?:#.*)?$")


@dataclass(frozen=True)
class PolicyStatus:
    exists: bool
    last_reviewed: dt.date | None
    source: str  # "config", "front matter", or "" when no date was found
    problem: str | None = None  # why the date could not be read


def front_matter_date(text: str) -> tuple[dt.date | None, str | None]:
    """The ``last_reviewed`` date of the front matter; (None, why) when there is none."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None, "the file has no front matter (a --- block at the top)"
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            break
        match = _LAST_REVIEWED.match(line.strip())
        if match:
            try:
                return dt.date.fromisoformat(match.group(1)), None
            except ValueError:
                return None, f"last_reviewed {printable(match.group(1), 30)!r} is not a date"
    return None, "the front matter has no last_reviewed: line"


def policy_status(path: Path, configured: dt.date | None) -> PolicyStatus:
    if not path.is_file():
        return PolicyStatus(False, configured, "config" if configured else "")
    if configured is not None:
        return PolicyStatus(True, configured, "config")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return PolicyStatus(True, None, "", f"cannot read the file: {printable(exc, 100)}")
    date, problem = front_matter_date(text)
    return PolicyStatus(True, date, "front matter" if date else "", problem)
