"""Keep secrets and hostile bytes out of every report, log line and terminal."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

# control codes (newlines too: a probed value must not fake a line of output), and the
# invisible format characters that reorder or hide text (bidi overrides, zero-width)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
MASK = "***"
# shorter secrets are masked only as a whole word: "test" must not eat "test_health"
DISTINCTIVE = 8
# words our own output is made of: a secret equal to one cannot be told apart from it
_WORDS = frozenset({"true", "false", "null", "none", "nan"})


def printable(text: object, limit: int = 200) -> str:
    """Text from a probed system: control codes made visible, cut to ``limit`` characters."""
    shown = _CONTROL.sub(_visible, str(text))
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _forms(secret: str) -> set[str]:
    """The secret as written, and as JSON, repr() and a URL would escape it."""
    return {
        secret,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote(secret, safe="!$&'()*+,;=:@/"),  # how httpx leaves a path or query
        quote_plus(secret),
    }


def _whole_word(form: str) -> str:
    before = r"(?<!\w)" if re.match(r"\w", form[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", form[-1]) else ""
    return before + re.escape(form) + after


class Redactor:
    """Masks the secrets a run knows of, wherever they sit in a string, and every URL's
    credentials, query values and any DSN password, whatever their source.

    Secrets are masked in strings, never in serialized text: ``walk`` a structure before it
    is dumped, so quotes and backslashes in a secret cannot hide it and a secret like
    ``false`` cannot break the JSON. A secret equal to one of the ``public`` names of the
    config (a service, a database, the system) or a JSON word is not hidden in free text:
    it is public anyway, and masking it would rewrite unrelated text.
    """

    def __init__(self, secrets: Iterable[str] = (), public: Iterable[str] = ()) -> None:
        named = set(public)
        kept = {
            s
            for s in secrets
            if s and len(s) >= 4 and s not in named and s.casefold() not in _WORDS
        }
        forms = {f for s in kept for f in _forms(s)}
        # longest first, so a secret that contains another is masked whole
        self._long = sorted((f for f in forms if len(f) >= DISTINCTIVE), key=len, reverse=True)
        short = sorted((f for f in forms if len(f) < DISTINCTIVE), key=len, reverse=True)
        self._short = re.compile("|".join(map(_whole_word, short))) if short else None

    def __call__(self, text: str) -> str:
        text = self.mask_known(text)
        if "://" in text:
            text = redact_urls(text)
        # a DSN password needs "user:pw@" or "password=": skip the regexes when neither can be
        return redact_dsn(text) if ("@" in text or "=" in text) else text

    def mask_known(self, text: str) -> str:
        """Only the known secrets."""
        for secret in self._long:
            if secret in text:
                text = text.replace(secret, MASK)
        if self._short is not None:
            text = self._short.sub(MASK, text)
        return text

    def leaks(self, text: str) -> bool:
        return any(secret in text for secret in self._long) or bool(
            self._short and self._short.search(text)
        )

    def walk(self, value: Any) -> Any:
        """A copy of a JSON-like structure with every string (keys too) redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.walk(k): self.walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.walk(v) for v in value]
        return value

    def mask_opaque(self, text: str) -> str:
        """Serialized text (a finished page): only distinctive secrets that no escaping can
        change, so replacing them cannot break the text's structure."""
        for secret in self._long:
            if secret in text and re.fullmatch(r"[\w.~+/=:@%-]+", secret):
                text = text.replace(secret, MASK)
        return text


class RedactingFilter(logging.Filter):
    """Redacts each log record before any handler formats it (httpx logs every URL)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__("maintcheck-redact")
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's to report
            return True
        shown = self.redact(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# ---------------------------------------------------------------------------- URLs and DSNs

_MASK = "***"
# libpq's parameters that hold a secret (PostgreSQL 18 adds oauth_client_secret)
_LIBPQ_SECRETS = r"(?:password|sslpassword|oauth_client_secret)"
_DSN_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_DSN_KV_PASSWORD = re.compile(
    rf"(?P<pre>(?<![\w-]){_LIBPQ_SECRETS}\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]*", re.I)
_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# query keys that carry a credential: the key, or its last part after _ or -, is one of these
CREDENTIAL_QUERY_KEYS = frozenset(
    {
        "token", "key", "apikey", "secret", "password", "passwd", "pwd", "pass", "sig",
        "signature", "auth", "authorization", "credential", "credentials", "sas", "session",
        "sessionid", "code", "sslpassword",
    }
)  # fmt: skip


def is_credential_key(key: str) -> bool:
    """token, access_token, api_key, X-Amz-Signature, client_secret ...: a credential."""
    name = key.strip().lower()
    return name in CREDENTIAL_QUERY_KEYS or re.split(r"[_-]", name)[-1] in CREDENTIAL_QUERY_KEYS


def in_secret_field(before: str, text: str) -> bool:
    """Whether a ${VAR} that starts after ``before`` (in ``text``) sits where a credential goes:
    a URL's userinfo, query or fragment, or a libpq secret parameter."""
    if re.search(rf"(?<![\w-]){_LIBPQ_SECRETS}\s*=\s*'?$", before, re.I):
        return True
    scheme = before.find("://")
    if scheme < 0:
        return False
    after_scheme = before[scheme + 3 :]
    if "?" in after_scheme or "#" in after_scheme:
        return True
    # still in the authority, and an @ follows before the path: userinfo
    return "/" not in after_scheme and "@" in text[len(before) :].split("/")[0]


def redact_url(url: str) -> str:
    """A URL safe to show: the password of its userinfo (all of it for http) and every
    query and key=value fragment value become ***."""
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + _MASK
        elif scheme.lower() in _WEB_SCHEMES:
            userinfo = _MASK  # a bare user part of a web URL is usually a token
        authority = userinfo + "@" + host
    tail, hash_, fragment = tail.partition("#")
    path, question, query = tail.partition("?")
    if question:
        query = _mask_values(query)
    if hash_ and "=" in fragment:
        fragment = _mask_values(fragment)
    return f"{scheme}://{authority}{path}{question}{query}{hash_}{fragment}"


def _mask_values(query: str) -> str:
    parts = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        parts.append(f"{key}={_MASK if value else ''}" if eq else (_MASK if part else ""))
    return "&".join(parts)


def redact_urls(text: str) -> str:
    """Every URL in a text with its credentials and query values masked (see redact_url)."""
    return _URL.sub(_redact_match, text) if "://" in text else text


def _redact_match(match: re.Match[str]) -> str:
    """Punctuation that ends a sentence after a URL ('at http://h/x?a=1: start it') stays."""
    url = match.group(0)
    bare = url.rstrip(".,;:!?)]}")
    return redact_url(bare) + url[len(bare) :]


def dsn_password(dsn: str) -> str | None:
    for pattern in (_DSN_URL_PASSWORD, _DSN_KV_PASSWORD):
        match = pattern.search(dsn)
        if match and match.group("pw"):
            return match.group("pw").strip("'")
    return None


def redact_dsn(text: str) -> str:
    """A DSN with any password replaced, safe to print."""
    text = _DSN_URL_PASSWORD.sub(lambda m: f"{m.group('pre')}:***@", text)
    return _DSN_KV_PASSWORD.sub(lambda m: f"{m.group('pre')}***", text)
