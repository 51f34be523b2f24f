"""What may be printed: probed text made harmless, secrets masked."""

from __future__ import annotations

from pytest_maintcheck.redact import Redactor, printable
from pytest_maintcheck.sandbox import PostgresCluster


def test_printable_makes_control_and_invisible_characters_visible() -> None:
    hostile = "ok\nFAKE LINE\r\x1b[31mred\x07\u202eevil\u200bzw"
    shown = printable(hostile, 200)
    assert shown == "ok\\x0aFAKE LINE\\x0d\\x1b[31mred\\x07\\u202eevil\\u200bzw"
    assert "\n" not in shown
    assert "\x1b" not in shown


def test_printable_truncates_to_the_limit() -> None:
    shown = printable("x" * 10_000, 50)
    assert len(shown) == 50
    assert shown.endswith("…")


def test_redactor_masks_known_secrets_and_any_dsn_password() -> None:
    redact = Redactor(["tok-123456"])
    assert redact("token tok-123456 used") == "token *** used"
    assert redact("postgresql://u:pw-zz@db/x failed") == "postgresql://u:***@db/x failed"
    assert redact("host=db password=pw-yy user=u") == "host=db password=*** user=u"
    assert redact("nothing secret here") == "nothing secret here"
    assert redact.leaks("a tok-123456 b")
    assert not redact.leaks("a tok-12345 b")


def test_sandbox_connect_takes_autocommit_from_the_caller(pg_cluster: PostgresCluster) -> None:
    with pg_cluster.connect(autocommit=False) as conn:
        assert conn.autocommit is False
    with pg_cluster.connect() as conn:
        assert conn.autocommit is True
