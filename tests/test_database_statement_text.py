"""Review finding: statement texts from pg_stat_statements keep no literal, whatever its quoting.

pg_stat_statements stores utility statements (ALTER ROLE ... PASSWORD, COMMENT ... IS) as sent,
literals included. With standard_conforming_strings (on since PostgreSQL 9.1) a backslash in a
plain '...' literal is an ordinary character; only E'...' strings escape with it.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.probes.pg_maintenance import redact_statement


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("ALTER ROLE app PASSWORD 'hunter2\\'", "hunter2"),
        ("COMMENT ON TABLE t IS 'C:\\' ; COMMENT ON COLUMN t.c IS 'Jane Doe'", "Jane Doe"),
        ("ALTER ROLE app PASSWORD 'x\\' VALID UNTIL '2030-01-01'", "2030"),
        ("SELECT 'unterminated Jane Doe", "Jane Doe"),
    ],
)
def test_no_literal_survives_a_trailing_backslash(text: str, secret: str) -> None:
    shown = redact_statement(text)
    assert secret not in shown, shown


def test_escape_strings_still_use_backslash_escapes() -> None:
    assert redact_statement("SELECT E'it\\'s Jane', 'b'") == "SELECT ?, ?"
