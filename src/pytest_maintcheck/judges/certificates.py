"""Certificate rules: expiry (capped at a share of a short-lived certificate's own lifetime),
validity not yet begun, the chain, the name, key sizes, signature hashes, the TLS version, and
the lifetime a public CA may issue; judged at an injected ``now``."""

from __future__ import annotations

import datetime as dt

from pytest_maintcheck.config import Certificate
from pytest_maintcheck.probes import certificates
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict, format_value

DAY = 86400.0
OLD_TLS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"}
MIN_EC_BITS = 256


def judge_certificate(
    c: Certificate,
    report: certificates.CertificateReport,
    assessment: Assessment,
    now: dt.datetime,
) -> None:
    """Every certificate rule, at ``now`` (a parameter so the rules can be tested at any date)."""
    leaf, earliest = report.leaf, report.earliest_expiry()
    assessment.details.update(
        source=report.source,
        tlsVersion=report.tls_version,
        presented=[x.to_json() for x in report.presented],
        verifiedChain=[x.subject for x in report.verified_chain],
        nameChecked=report.name_checked,
    )
    if report.verify_detail is not None:
        assessment.details["verifyDetail"] = report.verify_detail
    _judge_expiry(c, earliest, assessment, now)
    for x in certificates.not_yet_valid(report, now):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: {x.subject} is not valid until {x.not_before:%Y-%m-%d %H:%M} UTC "
            f"({format_value('daysToExpiry', (x.not_before - now).total_seconds() / DAY)} from "
            "now); clients refuse it until then",
            "Serve the previous certificate until then, or reissue it with a notBefore in the "
            "past; check the clock of the CA that issued it.",
        )
    problem = report.problem
    if problem is not None:  # a non-blocking one (a CA without keyUsage) verifies for most clients
        assessment.add_finding(
            Verdict.VIOLATION if problem.blocking else Verdict.DEGRADED,
            f"{c.name}: {'chain does not verify: ' if problem.blocking else ''}{problem.text}",
            problem.action,
        )
    if report.name_matches is False:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: {report.name_checked} is not among the certificate's names "
            f"({', '.join(leaf.sans) or 'no subjectAltName'})",
            f"Reissue the certificate with {report.name_checked} in its subjectAltName.",
        )
    # every RSA/DSA key of the chain: the weakest is the metric, each one too small a finding
    rsa = [x for x in report.presented if x.key_type in ("RSA", "DSA")]
    if rsa:
        assessment.measure_each(
            c.thresholds.get("minKeyBits"),
            [(f"{c.name} ({x.subject}, {x.key_type})", float(x.key_bits)) for x in rsa],
            action="Reissue the certificate with an RSA key of 2048 bits or more, or EC P-256.",
        )
    for x in report.presented:
        if x.key_type == "EC" and x.key_bits < MIN_EC_BITS:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{c.name}: {x.subject} has an EC key of {x.key_bits} bits (< {MIN_EC_BITS})",
                "Reissue the certificate with EC P-256 or larger.",
            )
        if not x.self_signed and x.signature_hash in certificates.WEAK_HASHES:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{c.name}: {x.subject} is signed with {x.signature_hash.upper()}",
                "Reissue it signed with SHA-256 or stronger; clients reject SHA-1 and MD5.",
            )
    if report.tls_version in OLD_TLS:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: negotiated {report.tls_version}; TLS 1.2 or newer is required",
            "Disable TLS 1.0/1.1 on the server and enable TLS 1.2 and 1.3.",
        )
    if not leaf.is_ca:
        _judge_lifetime(c, report, assessment)


def _judge_expiry(
    c: Certificate, earliest: certificates.CertInfo, assessment: Assessment, now: dt.datetime
) -> None:
    """Days to expiry against the fixed levels, each capped at a share of the certificate's own
    lifetime (a 24-hour certificate warns when 8 hours are left, not all its life)."""
    lifetime = earliest.validity_days
    left = earliest.days_to_expiry(now)
    if lifetime > 0:
        assessment.metrics["lifetimeLeft"] = round(left / lifetime, 3)
    threshold = certificates.expiry_threshold(
        c.thresholds.get("daysToExpiry"), c.thresholds.get("lifetimeLeft"), lifetime
    )
    assessment.measure(
        threshold,
        round(left, 2),  # hundredths: a 24-hour certificate is judged in hours
        subject=f"{c.name} ({earliest.subject}, expires {earliest.not_after:%Y-%m-%d %H:%M} UTC, "
        f"lifetime {format_value('daysToExpiry', lifetime)})",
        action=f"Renew {earliest.subject} and deploy it before {earliest.not_after:%Y-%m-%d}; "
        "if renewal is automated (ACME, step-ca), find out why it has not run.",
    )


def _judge_lifetime(
    c: Certificate, report: certificates.CertificateReport, assessment: Assessment
) -> None:
    """validityDays when the entry sets it (any CA); else, for a public CA only, the dated
    CA/Browser Forum limit in force on the certificate's issue date."""
    leaf = report.leaf
    public = certificates.counts_as_public(report, c.public_ca)
    kind = {True: "public", False: "private", None: "unknown: chain not verified"}[public]
    assessment.details["caKind"] = kind
    lifetime = round(leaf.validity_days, 1)
    configured = c.thresholds.get("validityDays")
    if configured is not None:
        assessment.measure(
            configured,
            lifetime,
            subject=f"{c.name} ({leaf.subject})",
            action="Issue server certificates for no longer than validityDays, renewed "
            "automatically.",
        )
        return
    rule = certificates.public_lifetime_rule(leaf.not_before) if public else None
    if rule is None:
        return
    assessment.details["lifetimeRule"] = (
        f"{rule.source}: at most {rule.max_days} days for certificates issued from {rule.since}"
    )
    assessment.measure(
        Threshold("validityDays", warn=rule.max_days),
        lifetime,
        subject=f"{c.name} ({leaf.subject}, public CA, issued {leaf.not_before:%Y-%m-%d}; "
        f"{rule.source} allows {rule.max_days} days from {rule.since})",
        action=f"Have it reissued for at most {rule.max_days} days and renew it automatically "
        "(ACME); if the CA is private, set publicCa: false or caFile.",
    )
