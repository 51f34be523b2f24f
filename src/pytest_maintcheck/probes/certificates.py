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

A chain that does not verify is explained in the operator's words (``ChainProblem``: self-signed,
intermediate not sent, CA without keyUsage, ...), never with the path builder's own message. A
CA without a keyUsage extension (what ``openssl req -x509 -new`` makes) is the one failure that
is not blocking: OpenSSL's default verification accepts it, strict verification does not.

The dated rules for public certificate lifetimes (``PUBLIC_TLS_LIFETIME``) and the expiry levels
relative to a certificate's own lifetime (``expiry_threshold``) are at the end of this module.
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
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from pytest_maintcheck.errors import Cause, MeasurementError, cause_of_os_error
from pytest_maintcheck.redact import printable
from pytest_maintcheck.verdict import Threshold

WEAK_HASHES = frozenset({"sha1", "md5"})
_ENCODING_DER = 2  # _ssl.ENCODING_DER: the private chain API returns _ssl.Certificate objects


class CertificateProbeError(MeasurementError):
    """The certificate could not be fetched or read; the message is safe to print.

    ``advice``: what to do when the cause is known in plain words (this port does not speak
    TLS ...); otherwise the action is the shared one about reaching the target.
    """

    def __init__(
        self,
        message: str,
        advice: str | None = None,
        *,
        cause: Cause = Cause.FAILED,
        where: str | None = None,
        target: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, cause=cause, where=where, target=target, status=status)
        self.advice = advice

    @property
    def action(self) -> str:
        return self.advice or super().action


@dataclass(frozen=True)
class ChainProblem:
    """Why a chain does not verify, in plain words, and the fix."""

    text: str
    action: str
    blocking: bool = True  # False: OpenSSL's default verification (most clients) still accepts it


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
    verified: bool = False  # a chain to an anchor was built (perhaps with a non-blocking problem)
    verify_error: str | None = None  # the problem's plain words
    verified_chain: list[CertInfo] = field(default_factory=list)  # leaf to trust anchor
    problem: ChainProblem | None = None
    verify_detail: str | None = None  # the path builder's own message, for the record only
    anchors: str = "the system trust store"  # what the chain was verified against, for messages
    private_anchors: bool = False  # verified against caFile (a private CA), not the system store
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
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        why, action = handshake_failure(exc, host, timeout)
        raise CertificateProbeError(
            f"TLS handshake with {host}:{port} failed: {why}",
            action,
            cause=cause_of_os_error(exc),
            where=printable(f"{host}:{port}", 200),
        ) from None
    if not certs:
        raise CertificateProbeError(f"{host}:{port} sent no certificate")
    return certs, version


# OpenSSL's reasons when the first bytes back are not a TLS record (an HTTP reply, an SSH banner)
_NOT_TLS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "WRONG_SSL_VERSION",
        "UNEXPECTED_RECORD",
        "BAD_PACKET_LENGTH",
        "RECORD_LENGTH_MISMATCH",
    }
)
_CHECK_PORT = "Check the port: host must name the port where the service speaks TLS."
_SERVER_REFUSES = {
    "TLSV1_ALERT_PROTOCOL_VERSION": "the server refuses every TLS version this client offers",
    "UNSUPPORTED_PROTOCOL": "the server only offers a TLS version this client refuses",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server and this client share no TLS version or cipher",
    "NO_CIPHERS_AVAILABLE": "the server and this client share no cipher",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server requires a client certificate",
    "TLSV1_ALERT_INTERNAL_ERROR": "the server reported an internal error",
    "TLSV1_UNRECOGNIZED_NAME": "the server knows no certificate for the name sent (serverName)",
}


def handshake_failure(exc: BaseException, host: str, timeout: float) -> tuple[str, str | None]:
    """A failed connection or handshake in plain words, and what to do when that is known."""
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | ssl.SSLZeroReturnError):
        return (
            "the server closed the connection during the TLS handshake: this port may not "
            "speak TLS, or the server accepts none of the TLS versions offered",
            _CHECK_PORT,
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or "")
        if reason in _NOT_TLS:
            return "this port does not speak TLS (its reply is not a TLS handshake)", _CHECK_PORT
        if reason in _SERVER_REFUSES:
            return _SERVER_REFUSES[reason], None
        words = reason.lower().replace("_", " ") or printable(exc, 120)
        return f"TLS error: {printable(words, 120)}", None
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens on that port", _CHECK_PORT
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s", "Check the host is up and reachable."
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {printable(host, 100)}", "Check the host name and DNS."
    if isinstance(exc, OSError) and exc.strerror:
        return printable(exc.strerror, 160), None
    return printable(exc, 200), None


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


def _key_cert_sign_if_present(
    _policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("keyUsage without keyCertSign")


# The same CA rules, but a CA without keyUsage passes, as OpenSSL's default verification lets it
# (curl, psql, Python <= 3.12); Python 3.13+ and openssl verify -x509_strict refuse it.
_CA_POLICY_LENIENT = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.KeyUsage, Criticality.AGNOSTIC, _key_cert_sign_if_present
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
    presented: list[x509.Certificate],
    anchors: list[x509.Certificate],
    now: dt.datetime,
    *,
    ca_policy: ExtensionPolicy | None = None,
) -> tuple[list[x509.Certificate], str | None]:
    """Path-build from the leaf to an anchor; (chain, None) or ([], the path builder's message)."""
    if not anchors:
        return [], "no trust anchors (caFile empty or no system certificate bundle)"
    leaf = presented[0]
    builder = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(_inside_validity(leaf, now))
        .extension_policies(
            ca_policy=ca_policy or ExtensionPolicy.webpki_defaults_ca(),
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


def _inside_validity(leaf: x509.Certificate, now: dt.datetime) -> dt.datetime:
    """Expiry and not-yet-valid are judged as dates, not again as "untrusted"."""
    return min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)


def check_chain(
    presented: list[x509.Certificate],
    anchors: list[x509.Certificate],
    now: dt.datetime,
    *,
    anchors_name: str,
    private: bool,
    sender: str = "the server",
) -> tuple[list[x509.Certificate], ChainProblem | None, str | None]:
    """The chain to an anchor (or none), what is wrong with it in plain words, and the builder's
    own message (for the record). ``sender`` is who presented the chain ("the file")."""
    chain, error = verify(presented, anchors, now)
    if error is None:
        return chain, None, None
    lenient, _ = verify(presented, anchors, now, ca_policy=_CA_POLICY_LENIENT)
    if lenient:
        return lenient, _ca_without_key_usage(lenient), error
    if not anchors:
        problem = ChainProblem(
            f"nothing to verify against: {anchors_name} holds no CA certificate",
            "Point caFile at the PEM file of the CA that issues this certificate.",
        )
    else:
        problem = diagnose(presented, anchors, now, anchors_name, private, sender)
    return [], problem, error


def _ca_without_key_usage(chain: list[x509.Certificate]) -> ChainProblem:
    bare = [c for c in chain[1:] if not _has(c, x509.KeyUsage)]
    names = ", ".join(_name(c) for c in bare) or "a CA in the chain"
    return ChainProblem(
        f"the CA lacks keyUsage: {names} has no keyUsage extension (what `openssl req -x509 -new` "
        "makes by default). OpenSSL clients (curl, psql, Python up to 3.12, check_ssl_cert) "
        "accept this chain; Python 3.13+ and `openssl verify -x509_strict` reject it",
        "Reissue the CA certificate with keyUsage = critical, keyCertSign, cRLSign (same key and "
        "subject, so the certificates it issued stay valid, e.g. openssl req -x509 -new -key "
        "ca.key -subj <same subject> -addext 'keyUsage=critical,keyCertSign,cRLSign') and "
        "give clients the new CA file.",
        blocking=False,
    )


def diagnose(
    presented: list[x509.Certificate],
    anchors: list[x509.Certificate],
    now: dt.datetime,
    anchors_name: str,
    private: bool,
    sender: str = "the server",
) -> ChainProblem:
    """Why a chain does not verify, found from the certificates themselves."""
    leaf = presented[0]
    path = _sent_path(presented)
    top = path[-1]
    if _self_signed(top) and not _among(top, anchors):
        if top is leaf:
            return ChainProblem(
                f"self-signed; set caFile: {_name(leaf)} signed itself and is not in "
                f"{anchors_name}",
                "Set caFile to a PEM file holding this certificate (or the CA that should issue "
                "it), or replace it with a certificate from a CA the clients trust.",
            )
        return ChainProblem(
            f"the chain ends at the root CA {_name(top)}, which is not in {anchors_name}",
            f"Add {_name(top)} to caFile if it is your own CA, or serve a certificate from a CA "
            "the clients trust.",
        )
    issuers = [a for a in anchors if a.subject == top.issuer]
    if not _self_signed(top) and not issuers:
        return _issuer_missing(top, anchors_name, private, sender)
    signers = [a for a in issuers if _signed_by(top, a)]
    if issuers and not signers:
        return ChainProblem(
            f"{anchors_name} holds a CA named {_issuer(top)}, but that CA did not sign "
            f"{_name(top)} (another CA with the same name, or the CA was re-keyed)",
            "Put the CA certificate that actually issued it into caFile.",
        )
    for cert, issuer in zip(path, [*path[1:], *signers[:1]], strict=False):
        found = _broken_rule(cert, issuer, _inside_validity(leaf, now))
        if found is not None:
            return found
    return ChainProblem(
        f"the chain from {_name(leaf)} to {anchors_name} breaks a rule TLS clients apply "
        "(the path builder's message is in the record's verifyDetail)",
        "Reissue the certificate from a CA that follows the CA/Browser Forum profile.",
    )


def _issuer_missing(
    top: x509.Certificate, anchors_name: str, private: bool, sender: str
) -> ChainProblem:
    server = sender == "the server"
    missing = f"{sender} does not {'send' if server else 'hold'} its intermediate"
    sent = "sent by the server" if server else f"in {sender}"
    text = (
        f"{missing}: {_issuer(top)}, which issued {_name(top)}, is neither {sent} nor in "
        f"{anchors_name}"
    )
    where = _ca_issuers_url(top)
    if where:
        text += f" (the certificate says it can be fetched from {where})"
    if private:
        text += "; or caFile is not the CA that issued it"
        also = f"; if {_issuer(top)} is your root CA, put it in caFile"
    else:
        text += "; or it comes from a private CA (then set caFile)"
        also = ""
    serve = "Serve" if server else "Put in the file"
    return ChainProblem(
        text,
        f"{serve} the full chain: the certificate followed by its intermediate CA "
        f"certificate(s), e.g. fullchain.pem rather than cert.pem{also}.",
    )


def _broken_rule(
    cert: x509.Certificate, issuer: x509.Certificate | None, at: dt.datetime
) -> ChainProblem | None:
    """The first rule one link of the chain breaks, in plain words."""
    fix = "Reissue it"
    if not subject_alt_names(cert) and not _is_ca(cert):
        return ChainProblem(
            f"{_name(cert)} has no subjectAltName (clients match host names only there)",
            f"{fix} with the host names in its subjectAltName.",
        )
    info = describe(cert)
    if info.key_type in ("RSA", "DSA") and info.key_bits < 2048:
        return ChainProblem(
            f"{_name(cert)} has a {info.key_bits}-bit {info.key_type} key, which clients refuse",
            f"{fix} with an RSA key of 2048 bits or more, or EC P-256.",
        )
    if info.key_type == "EC" and info.key_bits < 256:
        return ChainProblem(
            f"{_name(cert)} has a {info.key_bits}-bit EC key, which clients refuse",
            f"{fix} with EC P-256 or larger.",
        )
    if not info.self_signed and info.signature_hash in WEAK_HASHES:
        return ChainProblem(
            f"{_name(cert)} is signed with {str(info.signature_hash).upper()}, "
            "which clients refuse",
            f"{fix} signed with SHA-256 or stronger.",
        )
    if issuer is None:
        return None
    if not _is_ca(issuer):
        return ChainProblem(
            f"{_name(issuer)} signed {_name(cert)} but is not a CA (no basicConstraints CA:TRUE)",
            "Issue the certificate from a CA certificate (basicConstraints critical, CA:TRUE).",
        )
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return ChainProblem(
            f"the keyUsage of the CA {_name(issuer)} does not allow signing certificates "
            "(no keyCertSign)",
            "Reissue the CA with keyUsage = critical, keyCertSign, cRLSign.",
        )
    if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
        return ChainProblem(
            f"the CA {_name(issuer)} is valid only from {issuer.not_valid_before_utc:%Y-%m-%d} to "
            f"{issuer.not_valid_after_utc:%Y-%m-%d}, which does not cover {_name(cert)}'s "
            f"validity at {at:%Y-%m-%d}",
            f"Renew {_name(issuer)} and serve the renewed CA certificate.",
        )
    return None


def _sent_path(presented: list[x509.Certificate]) -> list[x509.Certificate]:
    """The leaf and the sent certificates that link up from it by signature, in order."""
    path = [presented[0]]
    rest = list(presented[1:])
    while not _self_signed(path[-1]):
        up = next((c for c in rest if _signed_by(path[-1], c)), None)
        if up is None:
            break
        rest.remove(up)
        path.append(up)
    return path


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # a signature cryptography will not check (SHA-1, MD5): name and key id decide, and the
        # weak hash is what gets reported
        return signature_hash(cert) in WEAK_HASHES and _key_ids_match(cert, issuer)
    return True


def _key_ids_match(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return True  # no key ids to compare: the names matched
    return aki.key_identifier is None or aki.key_identifier == ski.digest


def _self_signed(cert: x509.Certificate) -> bool:
    return _signed_by(cert, cert)


def _among(cert: x509.Certificate, anchors: list[x509.Certificate]) -> bool:
    der = cert.public_bytes(serialization.Encoding.DER)
    return any(a.public_bytes(serialization.Encoding.DER) == der for a in anchors)


def _extension(cert: x509.Certificate, kind: type[x509.KeyUsage]) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _has(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bool:
    try:
        cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return False
    return True


def _ca_issuers_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for access in aia:
        if access.access_method == AuthorityInformationAccessOID.CA_ISSUERS and isinstance(
            access.access_location, x509.UniformResourceIdentifier
        ):
            return printable(access.access_location.value, 200)
    return None


def _name(cert: x509.Certificate) -> str:
    return printable(cert.subject.rfc4514_string(), 200) or "(empty subject)"


def _issuer(cert: x509.Certificate) -> str:
    return printable(cert.issuer.rfc4514_string(), 200) or "(empty issuer)"


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
    report = _parsed(
        f"{host}:{port}", lambda: _examine(f"{host}:{port}", certs, ca_file, now, "the server")
    )
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
        lambda: _examine(
            str(path), certs, ca_file, now, "the file", verify_chain=not _is_ca(certs[0])
        ),
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
    sender: str,
    verify_chain: bool = True,
) -> CertificateReport:
    now = now or dt.datetime.now(dt.UTC)
    report = CertificateReport(source, [describe(c) for c in certs])
    report.private_anchors = ca_file is not None
    if ca_file is not None:
        report.anchors = f"caFile {printable(str(ca_file), 200)}"
    if verify_chain:
        chain, problem, detail = check_chain(
            certs,
            trust_store(ca_file),
            now,
            anchors_name=report.anchors,
            private=ca_file is not None,
            sender=sender,
        )
        report.verified = bool(chain)
        report.problem = problem
        report.verify_error = problem.text if problem else None
        report.verify_detail = detail
        report.verified_chain = [describe(c) for c in chain]
    return report


# ---------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class LifetimeRule:
    """The longest a public TLS server certificate issued on or after ``since`` may live."""

    since: dt.date
    max_days: int
    source: str


# The one table of public certificate lifetimes (CA/Browser Forum Baseline Requirements 6.3.2),
# by issue date (notBefore). Certificates from a private CA are not held to it unless the entry
# says publicCa: true. Add a row when the Forum changes the schedule.
PUBLIC_TLS_LIFETIME: tuple[LifetimeRule, ...] = (
    LifetimeRule(dt.date(2018, 3, 1), 825, "CA/Browser Forum ballot 193"),
    LifetimeRule(dt.date(2020, 9, 1), 398, "CA/Browser Forum ballot SC31"),
    LifetimeRule(dt.date(2026, 3, 15), 200, "CA/Browser Forum ballot SC-081"),
    LifetimeRule(dt.date(2027, 3, 15), 100, "CA/Browser Forum ballot SC-081"),
    LifetimeRule(dt.date(2029, 3, 15), 47, "CA/Browser Forum ballot SC-081"),
)


def public_lifetime_rule(issued: dt.datetime) -> LifetimeRule | None:
    """The rule in force when a certificate was issued (its notBefore, in UTC); None before 2018."""
    day = issued.astimezone(dt.UTC).date()
    in_force = [r for r in PUBLIC_TLS_LIFETIME if r.since <= day]
    return max(in_force, key=lambda r: r.since) if in_force else None


def counts_as_public(report: CertificateReport, public_ca: bool | None) -> bool | None:
    """Whether the public CA rules apply: publicCa when the entry says; else private when verified
    against caFile, public when verified against the system store; None (unknown) when the chain
    did not verify against the system store."""
    if public_ca is not None:
        return public_ca
    if report.private_anchors:
        return False
    return True if report.verified_chain else None


def expiry_threshold(
    fixed: Threshold | None, share: Threshold | None, lifetime_days: float
) -> Threshold | None:
    """The daysToExpiry levels for one certificate: each fixed level, capped at its share of the
    certificate's own lifetime (lifetimeLeft), so a 90-day or 24-hour certificate renewed by ACME
    is not "expiring" all its life. A level the fixed threshold lacks is not added."""
    if fixed is None or share is None or lifetime_days <= 0:
        return fixed

    def capped(level: float | None, part: float | None) -> float | None:
        return level if level is None or part is None else min(level, part * lifetime_days)

    return Threshold(fixed.metric, capped(fixed.warn, share.warn), capped(fixed.fail, share.fail))


def not_yet_valid(report: CertificateReport, now: dt.datetime) -> list[CertInfo]:
    """Certificates of the chain whose notBefore is still to come: clients refuse them."""
    return [c for c in report.chain if c.not_before > now]
