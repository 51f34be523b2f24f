"""A probed service that answers with markup and terminal escapes is shown escaped and cut short.

Hostile text reaches us through what a service says about itself: here an identity provider
whose discovery document names a hostile issuer and a hostile ``jwks_uri`` (markup, colour
codes, an OSC window-title sequence, the bell, 10 kB of padding), and one whose discovery URL
answers with the sandbox's ``/hostile`` HTML page instead of JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from check_runs import run_checks, run_dirs
from pytest_maintcheck.redact import printable
from pytest_maintcheck.sandbox import SandboxApi
from pytest_maintcheck.sandbox.api_server import HOSTILE_BODY

RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\r")
HOSTILE = "<script>alert(1)</script>\x1b[31mRED\x1b[0m\x1b]0;owned\x07\x9b2J"


def strings(value: Any) -> Iterator[str]:
    """Every string (keys too) in a decoded JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# ---------------------------------------------------------------------------- printable()


def test_printable_shows_control_codes_as_escapes() -> None:
    shown = printable("ok\x1b[31mRED\x1b[0m\x1b]0;owned\x07 \x00\x7f\x9b2J\rEND", 200)
    assert shown == r"ok\x1b[31mRED\x1b[0m\x1b]0;owned\x07 \x00\x7f\x9b2J\x0dEND"
    assert not any(c in shown for c in RAW_CONTROLS)


def test_printable_cuts_to_the_limit() -> None:
    shown = printable(HOSTILE_BODY, 120)
    assert len(shown) == 120
    assert shown.endswith("…")
    assert "\x1b" not in shown
    assert printable("short", 120) == "short"


def test_escaping_cannot_push_past_the_limit() -> None:
    # each control code becomes four characters; the cut happens after escaping
    assert len(printable("\x1b" * 1000, 50)) == 50


def test_the_hostile_route_really_is_hostile(http_api: SandboxApi) -> None:
    """The fixture the end-to-end test relies on: raw escapes and markup on the wire."""
    body = httpx.get(http_api.url("/hostile"), timeout=5).text
    assert "\x1b[31m" in body
    assert "<script>" in body
    assert r"\x1b[31m" in printable(body, 200)


# ---------------------------------------------------------------------------- end to end


def test_daily_suite_against_a_hostile_identity_provider(
    pytester: pytest.Pytester, http_api: SandboxApi
) -> None:
    tail = "A" * 10_000
    http_api.oidc_overrides = {
        "issuer": HOSTILE + tail,
        "jwks_uri": http_api.url("/keys/" + HOSTILE + tail),
    }
    health = [
        {
            "service": "sso-hostile",
            "type": "authentication",
            "endpoint": http_api.url("/.well-known/openid-configuration"),
        },
        {"service": "sso-html", "type": "authentication", "endpoint": http_api.url("/hostile")},
        {"service": "web-html", "type": "api", "endpoint": http_api.url("/hostile")},
    ]
    config = {"version": 1, "system": "test", "healthChecks": health}
    checked = run_checks(pytester, config, "test_daily_health.py", args=["--color=no", "-rA"])
    result = checked.result
    assert result.parseoutcomes() == {"failed": 2, "passed": 1}, result.stdout.str()

    terminal = result.stdout.str() + result.stderr.str()
    # the hostile text did reach the terminal, made visible...
    assert r"\x1b[31mRED" in terminal
    assert "discovery document is not a JSON object" in terminal
    # ...and not one raw control code came with it, nor the 10 kB tail
    assert not any(c in terminal for c in RAW_CONTROLS)
    assert "A" * 500 not in terminal

    (run,) = run_dirs(pytester.path / "reports")
    checks = checked.checks
    hostile = checks["sso-hostile"]
    assert hostile["verdict"] == "violation"
    assert r"JWKS at http://127.0.0.1:" in hostile["message"]
    assert r"\x1b[31mRED" in hostile["message"]
    assert len(hostile["message"]) < 1000
    assert checks["web-html"]["verdict"] == "pass"  # an API's body is not judged, only timed

    for record in run.glob("*.json"):
        text = record.read_text()
        for value in strings(json.loads(text)):
            assert not any(c in value for c in RAW_CONTROLS), (record.name, value[:200])
            assert "A" * 500 not in value, record.name
        assert "\x1b" not in text

    page = (run / "report.html").read_text()
    assert not any(c in page for c in RAW_CONTROLS)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
