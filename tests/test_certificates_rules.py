"""Review findings on certificates.

A certificate whose extensions cannot be parsed is one clear finding. That certificate is real
(signed by cryptography); only its subjectAltName extension holds bytes that are not valid DER, as
a broken issuing tool writes. OpenSSL refuses to serve such a certificate, so the endpoint path
(examine_endpoint, same _parsed guard) is not driven here.

Below it, the certificate rules of the monthly check judged at an injected date.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from pytest_maintcheck.config import load_config
from pytest_maintcheck.judges.certificates import judge_certificate
from pytest_maintcheck.probes import certificates
from pytest_maintcheck.sandbox import CertAuthority, make_ca
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict


def _broken_san_cert(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broken.internal")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x01\x02"), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "broken.pem", folder / "broken.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_pem_file_with_a_malformed_extension_is_a_probe_error(tmp_path: Path) -> None:
    cert, _ = _broken_san_cert(tmp_path)
    with pytest.raises(certificates.CertificateProbeError, match="cannot be parsed"):
        certificates.examine_file(cert)


# ---------------------------------------------------------------------------- rules at a date
# Issue 8: certificate lifetimes by issue date, relative expiry, not-yet-valid. Every case fixes
# its own dates (certificates from a CA valid 2025-2035, judged at an injected ``now``), so the
# results do not depend on the day the suite runs.

UTC = dt.UTC
CA_FROM = dt.datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dated_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertAuthority, Path]:
    ca = make_ca("dated CA", valid_from=CA_FROM, days_valid=3650)
    return ca, ca.write_ca(tmp_path_factory.mktemp("dated-ca"))


def _judge(
    tmp_path: Path,
    dated_ca: tuple[CertAuthority, Path],
    issued: dt.datetime,
    days: float,
    now: dt.datetime,
    **fields: Any,
) -> Assessment:
    """One server certificate issued at ``issued`` for ``days``, through the monthly rules."""
    ca, ca_file = dated_ca
    cert, _ = ca.issue(["records.internal"], not_before=issued, days_valid=days).write(tmp_path)
    config = tmp_path / "maintcheck.yaml"
    entry = {"name": "api", "file": str(cert), "caFile": str(ca_file), **fields}
    config.write_text(yaml.safe_dump({"version": 1, "certificates": [entry]}))
    certificate = load_config(config).certificates[0]
    report = certificates.examine_file(cert, ca_file=ca_file, now=now)
    assessment = Assessment()
    judge_certificate(certificate, report, assessment, now)
    return assessment


def _text(assessment: Assessment) -> str:
    return "\n".join(f.description for f in assessment.findings)


@pytest.mark.parametrize(
    ("issued", "days", "verdict", "limit"),
    [
        (dt.datetime(2025, 6, 1, tzinfo=UTC), 397, Verdict.PASS, None),  # 398 days until 2026-03-15
        (dt.datetime(2026, 3, 14, 23, 0, tzinfo=UTC), 300, Verdict.PASS, None),
        (dt.datetime(2026, 3, 15, tzinfo=UTC), 300, Verdict.DEGRADED, "200 days from 2026-03-15"),
        (dt.datetime(2026, 4, 1, tzinfo=UTC), 199, Verdict.PASS, None),
        (dt.datetime(2027, 4, 1, tzinfo=UTC), 150, Verdict.DEGRADED, "100 days from 2027-03-15"),
        (dt.datetime(2029, 4, 1, tzinfo=UTC), 60, Verdict.DEGRADED, "47 days from 2029-03-15"),
        (dt.datetime(2029, 4, 1, tzinfo=UTC), 47, Verdict.PASS, None),
    ],
)
def test_public_lifetime_follows_the_rule_of_the_issue_date(
    tmp_path: Path,
    dated_ca: tuple[CertAuthority, Path],
    issued: dt.datetime,
    days: int,
    verdict: Verdict,
    limit: str | None,
) -> None:
    now = issued + dt.timedelta(days=days / 2)  # halfway through: nothing else to report
    judged = _judge(tmp_path, dated_ca, issued, days, now, publicCa=True)
    assert judged.verdict is verdict, _text(judged)
    if limit is not None:
        assert f"CA/Browser Forum ballot SC-081 allows {limit}" in _text(judged)
        assert f"certificate lifetime {days} days (warn > {limit.split()[0]} days)" in _text(judged)


def test_a_private_ca_is_not_held_to_the_public_table_unless_configured(
    tmp_path: Path, dated_ca: tuple[CertAuthority, Path]
) -> None:
    issued = dt.datetime(2027, 4, 1, tzinfo=UTC)
    now = issued + dt.timedelta(days=100)
    private = _judge(tmp_path, dated_ca, issued, 800, now)  # caFile: private
    assert private.verdict is Verdict.PASS, _text(private)
    assert private.details["caKind"] == "private"
    configured = _judge(tmp_path, dated_ca, issued, 800, now, thresholds={"validityDays": 730})
    assert configured.verdict is Verdict.VIOLATION
    assert "certificate lifetime 800 days (fail > 730 days)" in _text(configured)


def test_the_rule_table_is_dated_and_ordered() -> None:
    rule = certificates.public_lifetime_rule
    assert rule(dt.datetime(2017, 12, 31, tzinfo=UTC)) is None
    expected = {
        (2018, 3, 1): 825,
        (2020, 8, 31): 825,
        (2020, 9, 1): 398,
        (2026, 3, 14): 398,
        (2026, 3, 15): 200,
        (2027, 3, 14): 200,
        (2027, 3, 15): 100,
        (2029, 3, 14): 100,
        (2029, 3, 15): 47,
        (2040, 1, 1): 47,
    }
    for day, max_days in expected.items():
        found = rule(dt.datetime(*day, 23, 59, tzinfo=UTC))
        assert found is not None
        assert (day, found.max_days) == (day, max_days)
    # the issue date counts in UTC: 01:00 at +02:00 on the 15th is still the 14th
    east = dt.timezone(dt.timedelta(hours=2))
    assert rule(dt.datetime(2026, 3, 15, 1, 0, tzinfo=east)).max_days == 398  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("issued", "days", "left", "verdict"),
    [
        (dt.datetime(2026, 1, 1, tzinfo=UTC), 90, 55, Verdict.PASS),
        (dt.datetime(2026, 1, 1, tzinfo=UTC), 90, 27, Verdict.DEGRADED),  # under 30 days = 1/3
        (dt.datetime(2026, 1, 1, tzinfo=UTC), 90, 5, Verdict.VIOLATION),
        (dt.datetime(2026, 1, 1, tzinfo=UTC), 6, 3, Verdict.PASS),  # 30 fixed days: always warned
        (dt.datetime(2026, 1, 1, tzinfo=UTC), 6, 1.5, Verdict.DEGRADED),  # under a third (2 days)
        (dt.datetime(2026, 1, 1, tzinfo=UTC), 6, 0.5, Verdict.VIOLATION),  # under a tenth
        (dt.datetime(2025, 6, 1, tzinfo=UTC), 397, 100, Verdict.PASS),  # a third is not early
        (dt.datetime(2025, 6, 1, tzinfo=UTC), 397, 20, Verdict.DEGRADED),  # fixed 30 days
    ],
)
def test_days_to_expiry_is_judged_against_the_certificates_lifetime(
    tmp_path: Path,
    dated_ca: tuple[CertAuthority, Path],
    issued: dt.datetime,
    days: int,
    left: float,
    verdict: Verdict,
) -> None:
    now = issued + dt.timedelta(days=days - left)
    judged = _judge(tmp_path, dated_ca, issued, days, now)
    assert judged.verdict is verdict, _text(judged)
    assert judged.metrics["lifetimeLeft"] == pytest.approx(left / days, abs=0.001)


def test_fixed_expiry_levels_stay_available(
    tmp_path: Path, dated_ca: tuple[CertAuthority, Path]
) -> None:
    issued = dt.datetime(2026, 1, 1, tzinfo=UTC)
    now = issued + dt.timedelta(days=3)  # a 6-day certificate, 3 days left
    judged = _judge(tmp_path, dated_ca, issued, 6, now, thresholds={"lifetimeLeft": None})
    assert judged.verdict is Verdict.VIOLATION
    assert "days to expiry 3 days (warn < 30 days, fail < 7 days)" in _text(judged)


def test_expiry_levels_are_capped_not_added() -> None:
    fixed = Threshold("daysToExpiry", warn=30, fail=7)
    share = Threshold("lifetimeLeft", warn=1 / 3, fail=0.1)
    assert certificates.expiry_threshold(fixed, share, 1) == Threshold(
        "daysToExpiry", warn=pytest.approx(1 / 3), fail=pytest.approx(0.1)
    )
    assert certificates.expiry_threshold(fixed, share, 398) == fixed
    fail_only = Threshold("daysToExpiry", fail=7)  # no warn level: none is made up
    assert certificates.expiry_threshold(fail_only, share, 1).warn is None  # type: ignore[union-attr]


def test_a_certificate_not_yet_valid_is_a_violation_at_that_date(
    tmp_path: Path, dated_ca: tuple[CertAuthority, Path]
) -> None:
    issued = dt.datetime(2026, 6, 10, tzinfo=UTC)
    before = _judge(tmp_path, dated_ca, issued, 90, dt.datetime(2026, 6, 1, tzinfo=UTC))
    assert before.verdict is Verdict.VIOLATION
    assert [f.description for f in before.findings] == [
        "api: CN=records.internal is not valid until 2026-06-10 00:00 UTC (9 days from now); "
        "clients refuse it until then"
    ]
    after = _judge(tmp_path, dated_ca, issued, 90, dt.datetime(2026, 6, 11, tzinfo=UTC))
    assert after.verdict is Verdict.PASS, _text(after)


def test_public_or_private_is_decided_from_the_trust_used() -> None:
    leaf = certificates.CertInfo(
        "CN=a", "CN=ca", CA_FROM, CA_FROM, "EC", 256, "sha256", ("a",), False, False
    )
    public = certificates.CertificateReport("a:443", [leaf], verified_chain=[leaf, leaf])
    assert certificates.counts_as_public(public, None) is True  # the system store verified it
    unverified = certificates.CertificateReport("a:443", [leaf])
    assert certificates.counts_as_public(unverified, None) is None
    private = certificates.CertificateReport(
        "a:443", [leaf], verified_chain=[leaf, leaf], private_anchors=True
    )
    assert certificates.counts_as_public(private, None) is False  # caFile
    assert certificates.counts_as_public(private, True) is True  # publicCa overrides
    assert certificates.counts_as_public(public, False) is False


# ---------------------------------------------------------------------------- chain words


def _chain_file(folder: Path, name: str, *pems: bytes) -> Path:
    path = folder / f"{name}.pem"
    path.write_bytes(b"".join(pems))
    return path


def test_a_sent_root_that_is_not_trusted_is_named(tmp_path: Path) -> None:
    stranger = make_ca("stranger root CA")
    sent = _chain_file(
        tmp_path, "sent", stranger.issue(["a.internal"]).cert_pem, stranger.ca_cert_pem
    )
    ca_file = make_ca().write_ca(tmp_path / "ca")
    report = certificates.examine_file(sent, ca_file=ca_file)
    assert report.problem is not None
    assert report.problem.text == (
        f"the chain ends at the root CA CN=stranger root CA, which is not in caFile {ca_file}"
    )
    assert report.verify_detail is not None  # the builder's message is kept, not shown


def test_a_ca_file_with_another_ca_of_the_same_name_is_told_apart(tmp_path: Path) -> None:
    issuer, namesake = make_ca("clinical CA"), make_ca("clinical CA")
    sent = _chain_file(tmp_path, "sent", issuer.issue(["a.internal"]).cert_pem)
    report = certificates.examine_file(sent, ca_file=namesake.write_ca(tmp_path / "ca"))
    assert report.problem is not None
    assert "holds a CA named CN=clinical CA, but that CA did not sign CN=a.internal" in (
        report.problem.text
    )


def test_a_certificate_signed_by_a_non_ca_says_so(tmp_path: Path) -> None:
    ca = make_ca()
    server = ca.issue(["signer.internal"])
    key = serialization.load_pem_private_key(server.key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    not_a_ca = CertAuthority("signer.internal", key, server.certificate)
    sent = _chain_file(tmp_path, "sent", not_a_ca.issue(["a.internal"]).cert_pem, server.cert_pem)
    report = certificates.examine_file(sent, ca_file=ca.write_ca(tmp_path / "ca"))
    assert report.problem is not None
    assert report.problem.text == (
        "CN=signer.internal signed CN=a.internal but is not a CA (no basicConstraints CA:TRUE)"
    )


def test_a_file_without_its_intermediate_says_so(tmp_path: Path) -> None:
    root = make_ca("file root CA", path_length=1)
    intermediate = root.issue_intermediate("file intermediate CA")
    sent = _chain_file(tmp_path, "leaf-only", intermediate.issue(["a.internal"]).cert_pem)
    report = certificates.examine_file(sent, ca_file=root.write_ca(tmp_path / "ca"))
    assert report.problem is not None
    assert report.problem.text.startswith(
        "the file does not hold its intermediate: CN=file intermediate CA, which issued "
        "CN=a.internal, is neither in the file nor in caFile"
    )
    assert report.problem.action.startswith("Put in the file the full chain")
    whole = _chain_file(tmp_path, "whole", sent.read_bytes(), intermediate.ca_cert_pem)
    assert certificates.examine_file(whole, ca_file=root.write_ca(tmp_path / "ca")).problem is None
