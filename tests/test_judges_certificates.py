"""Certificate rules (pytest_maintcheck.judges.certificates) on constructed reports at an
injected ``now``: no server, no file. tests/test_certificates.py proves the wiring against real
TLS servers; tests/test_review_certificates.py the same rules on real certificates."""

from __future__ import annotations

import datetime as dt

from pytest_maintcheck.config import Certificate, Thresholds
from pytest_maintcheck.judges.certificates import judge_certificate
from pytest_maintcheck.probes.certificates import CertificateReport, CertInfo
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def _cert(
    subject: str, *, bits: int = 2048, days_left: float = 60, is_ca: bool = False
) -> CertInfo:
    return CertInfo(
        subject=subject,
        issuer="CN=Clinic CA",
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW + dt.timedelta(days=days_left),
        key_type="RSA",
        key_bits=bits,
        signature_hash="sha256",
        sans=("records.internal",),
        is_ca=is_ca,
        self_signed=False,
    )


def _entry(**limits: object) -> Certificate:
    parsed = tuple(Threshold.parse(name, raw) for name, raw in limits.items())
    return Certificate("records", host="records.internal", thresholds=Thresholds(parsed))


def _report(*presented: CertInfo) -> CertificateReport:
    return CertificateReport(
        "records.internal:443", list(presented), tls_version="TLSv1.3", verified=True
    )


def test_every_weak_rsa_key_of_the_chain_is_a_finding_the_weakest_the_metric() -> None:
    report = _report(_cert("CN=records", bits=1024), _cert("CN=Issuing CA", bits=1536, is_ca=True))
    assessment = Assessment()
    judge_certificate(_entry(minKeyBits=2048), report, assessment, NOW)
    weak = [f.description for f in assessment.findings if "key size" in f.description]
    assert len(weak) == 2, weak  # the old rule named only the weakest
    assert weak[0].startswith("records (CN=records, RSA): key size 1024")
    assert assessment.metrics["minKeyBits"] == 1024


def test_expiry_is_judged_at_the_injected_now() -> None:
    assessment = Assessment()
    judge_certificate(
        _entry(daysToExpiry={"warn": 30, "fail": 7}),
        _report(_cert("CN=records", days_left=5)),
        assessment,
        NOW,
    )
    assert assessment.verdict is Verdict.VIOLATION
    assert assessment.metrics["daysToExpiry"] == 5
    assert "expires 2030-06-06 12:00 UTC" in assessment.findings[0].description


def test_an_old_tls_version_is_a_violation() -> None:
    report = _report(_cert("CN=records"))
    report.tls_version = "TLSv1.1"
    assessment = Assessment()
    judge_certificate(_entry(), report, assessment, NOW)
    assert any("negotiated TLSv1.1" in f.description for f in assessment.findings)
