"""Keep secrets and hostile bytes out of every report, log line and terminal."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pytest_maintcheck.config import redact_dsn

# control codes (newlines too: a probed value must not fake a line of output), and the
# invisible format characters that reorder or hide text (bidi overrides, zero-width)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
MASK = "***"


def printable(text: object, limit: int = 200) -> str:
    """Text from a probed system: control codes made visible, cut to ``limit`` characters."""
    shown = _CONTROL.sub(_visible, str(text))
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class Redactor:
    """Replaces every known secret (and any DSN password) with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret that contains another is masked whole
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = self.mask_known(text)
        # a DSN password needs "user:pw@" or "password=": skip the regexes when neither can be
        return redact_dsn(text) if ("@" in text or "=" in text) else text

    def mask_known(self, text: str) -> str:
        """Only the known secrets: cheap enough for a whole records file."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def leaks(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)
