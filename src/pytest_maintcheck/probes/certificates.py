"""TLS certificates of an endpoint or a PEM file: what they are, whether they verify.

The handshake is made with verification off, so a broken endpoint can still be examined; the
chain is then verified separately with ``cryptography``'s X.509 path builder
(``x509.verification.PolicyBuilder``) against ``caFile`` or the system store. Why that and not a
second, verifying ``ssl`` handshake: it verifies exactly the chain this handshake saw (a second
connection may land on another server behind a load balancer), it works the same for PEM files
where there is no handshake at all, and it says why a chain fails.

The chain is verified at a moment inside the leaf's validity, so an expired certificate is
reported once (as days to expiry) and not again as "does not verify"; the host name is checked
separately for the same reason. Web PKI policy still refuses weak keys and SHA-1/MD5 signatures,
so those also show as "does not verify" (which is what clients will do).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from pytest_maintcheck.errors import MeasurementError, cause_of_os_error
from pytest_maintcheck.redact import printable

WEAK_HASHES = frozenset({"sha1", "md5"})
_ENCODING_DER = 2  # _ssl.ENCODING_DER: the private chain API returns _ssl.Certificate objects


class CertificateProbeError(MeasurementError):
    """The certificate could not be fetched or read; the message is safe to print."""


@dataclass(frozen=True)
class CertInfo:
    """One certificate, the facts the review judges."""

    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str  # RSA | EC | DSA | Ed25519 | Ed448
    key_bits: int
    signature_hash: str | None  # sha256, sha1, md5; None for Ed25519/Ed448
    sans: tuple[str, ...]
    is_ca: bool
    self_signed: bool

    @property
    def validity_days(self) -> float:
        return (self.not_after - self.not_before).total_seconds() / 86400

    def days_to_expiry(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "notBefore": self.not_before.isoformat(),
            "notAfter": self.not_after.isoformat(),
            "key": f"{self.key_type} {self.key_bits}",
            "signatureHash": self.signature_hash,
            "subjectAltNames": list(self.sans),
            "ca": self.is_ca,
        }


@dataclass
class CertificateReport:
    """What one certificates entry presented, and how it verified."""

    source: str
    presented: list[CertInfo]  # leaf first, as served (or as in the file)
    tls_version: str | None = None  # None for a file
    verified: bool = False
    verify_error: str | None = None
    verified_chain: list[CertInfo] = field(default_factory=list)  # leaf to trust anchor
    name_checked: str | None = None
    name_matches: bool | None = None

    @property
    def leaf(self) -> CertInfo:
        return self.presented[0]

    @property
    def chain(self) -> list[CertInfo]:
        """The verified chain when there is one (it includes the anchor), else what was sent."""
        return self.verified_chain or self.presented

    def earliest_expiry(self) -> CertInfo:
        return min(self.chain, key=lambda c: c.not_after)


def describe(cert: x509.Certificate) -> CertInfo:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = "EC", key.curve.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "DSA", key.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "Ed448", 456
    else:
        key_type, bits = type(key).__name__, 0
    return CertInfo(
        subject=printable(cert.subject.rfc4514_string(), 200),
        issuer=printable(cert.issuer.rfc4514_string(), 200),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_bits=bits,
        signature_hash=signature_hash(cert),
        sans=subject_alt_names(cert),
        is_ca=_is_ca(cert),
        self_signed=cert.subject == cert.issuer,
    )


def signature_hash(cert: x509.Certificate) -> str | None:
    """The hash the issuer signed with (lower case), from the signature algorithm OID."""
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # noqa: BLE001 (an algorithm this build does not know: name it by OID)
        return printable(cert.signature_algorithm_oid.dotted_string, 60)
    return None if algorithm is None else algorithm.name.lower()


def subject_alt_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = [printable(n, 255) for n in ext.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def name_matches(name: str, sans: tuple[str, ...]) -> bool:
    """RFC 6125: exact DNS name, a left-most ``*`` label, or an IP address SAN; no CN fallback."""
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        return any(_as_ip(s) == ip for s in sans)
    host = name.rstrip(".").lower()
    for san in sans:
        pattern = san.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            first, rest = host.split(".", 1)
            if first and rest == pattern[2:] and "." in rest:
                return True
    return False


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- fetching


def fetch_chain(
    host: str, port: int, server_name: str | None, timeout: float
) -> tuple[list[x509.Certificate], str]:
    """Handshake with verification off; the certificates sent (leaf first) and the TLS version.

    Old protocol versions and weak keys are allowed here on purpose: the review reports them.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    sni = server_name or host
    if _as_ip(sni.strip("[]")) is not None:
        sni = ""
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=sni or None) as tls,
        ):
            version = tls.version() or "unknown"
            certs = _presented(tls)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise CertificateProbeError(
            f"TLS handshake with {host}:{port} failed: {printable(exc, 200)}",
            cause=cause_of_os_error(exc),
            where=printable(f"{host}:{port}", 200),
        ) from None
    if not certs:
        raise CertificateProbeError(f"{host}:{port} sent no certificate")
    return certs, version


def _presented(tls: ssl.SSLSocket) -> list[x509.Certificate]:
    # Python 3.13 has SSLSocket.get_unverified_chain(); 3.10-3.12 have it on the private
    # _sslobj only. Use it when present; otherwise the leaf alone (getpeercert).
    sslobj = getattr(tls, "_sslobj", None)
    get_chain = getattr(tls, "get_unverified_chain", None) or getattr(
        sslobj, "get_unverified_chain", None
    )
    if get_chain is not None:
        chain = get_chain() or []
        der = [c if isinstance(c, bytes) else c.public_bytes(_ENCODING_DER) for c in chain]
        if der:
            return [x509.load_der_x509_certificate(d) for d in der]
    leaf = tls.getpeercert(binary_form=True)
    return [x509.load_der_x509_certificate(leaf)] if leaf else []


def read_pem(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateProbeError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateProbeError(f"{path} holds no PEM certificate") from None
    return certs


# Web PKI rules for the CAs; for the leaf only a SAN is required (a server verifier needs one),
# so a private CA's leaf without, say, an EKU is not called untrusted.
_EE_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


@functools.cache
def _system_roots() -> tuple[x509.Certificate, ...]:
    paths = ssl.get_default_verify_paths()
    found: list[x509.Certificate] = []
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            try:
                with warnings.catch_warnings():  # some distro roots have odd serial numbers
                    warnings.simplefilter("ignore")
                    found = x509.load_pem_x509_certificates(Path(candidate).read_bytes())
            except (OSError, ValueError):
                continue
            break
    return tuple(found)


def trust_store(ca_file: Path | None) -> list[x509.Certificate]:
    """The anchors: ``caFile`` when given, else the system bundle."""
    if ca_file is not None:
        return read_pem(ca_file)
    return list(_system_roots())


def verify(
    presented: list[x509.Certificate], anchors: list[x509.Certificate], now: dt.datetime
) -> tuple[list[x509.Certificate], str | None]:
    """Path-build from the leaf to an anchor; (chain, None) or ([], why it failed)."""
    if not anchors:
        return [], "no trust anchors (caFile empty or no system certificate bundle)"
    leaf = presented[0]
    # inside the leaf's validity: expiry is judged as days to expiry, not as "untrusted"
    at = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    builder = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=_EE_POLICY,
        )
    )
    sans = subject_alt_names(leaf)
    subject: x509.GeneralName
    # the name is checked on its own (name_matches); here only trust is in question
    if sans and _as_ip(sans[0]) is not None:
        subject = x509.IPAddress(ipaddress.ip_address(sans[0]))
    else:
        subject = x509.DNSName(sans[0] if sans else "invalid.invalid")
    try:
        verifier = builder.build_server_verifier(subject)
        chain = verifier.verify(leaf, presented[1:])
    except (VerificationError, ValueError) as exc:
        return [], printable(exc, 300)
    return list(chain), None


def examine_endpoint(
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 10.0,
    now: dt.datetime | None = None,
) -> CertificateReport:
    certs, version = fetch_chain(host, port, server_name, timeout)
    report = _parsed(f"{host}:{port}", lambda: _examine(f"{host}:{port}", certs, ca_file, now))
    report.tls_version = version
    report.name_checked = server_name or host
    report.name_matches = name_matches(report.name_checked, report.leaf.sans)
    return report


def examine_file(
    path: Path,
    *,
    server_name: str | None = None,
    ca_file: Path | None = None,
    now: dt.datetime | None = None,
) -> CertificateReport:
    """A PEM file: a server certificate (leaf first, then its chain) or a CA bundle.

    A CA bundle (first certificate is a CA) is only checked for expiry, keys and signatures;
    a server certificate is verified too, and its name checked when serverName is given.
    """
    certs = read_pem(path)
    report = _parsed(
        str(path),
        lambda: _examine(str(path), certs, ca_file, now, verify_chain=not _is_ca(certs[0])),
    )
    if server_name is not None:
        report.name_checked = server_name
        report.name_matches = name_matches(server_name, report.leaf.sans)
    return report


def _parsed(source: str, examine: Callable[[], CertificateReport]) -> CertificateReport:
    """cryptography parses extensions and keys lazily: a malformed one raises ValueError late."""
    try:
        return examine()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateProbeError(
            f"{source}: a certificate cannot be parsed: {printable(exc, 160)}"
        ) from None


def _examine(
    source: str,
    certs: list[x509.Certificate],
    ca_file: Path | None,
    now: dt.datetime | None,
    verify_chain: bool = True,
) -> CertificateReport:
    now = now or dt.datetime.now(dt.UTC)
    report = CertificateReport(source, [describe(c) for c in certs])
    if verify_chain:
        chain, error = verify(certs, trust_store(ca_file), now)
        report.verified = error is None
        report.verify_error = error
        report.verified_chain = [describe(c) for c in chain]
    return report
