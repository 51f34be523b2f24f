"""A private CA that issues server certificates good, expired, weak or SHA-1 on demand."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pytest_maintcheck.sandbox.postgres import SandboxError

KeyType = Literal["ec", "rsa"]
HashAlg = Literal["sha256", "sha1"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
_CURVES: dict[int, ec.EllipticCurve] = {384: ec.SECP384R1(), 521: ec.SECP521R1()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key(key_type: KeyType, key_bits: int) -> PrivateKey:
    """EC is P-256 unless key_bits names P-384/P-521; RSA takes key_bits as is (1024 allowed)."""
    if key_type == "ec":
        return ec.generate_private_key(_CURVES.get(key_bits, ec.SECP256R1()))
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    raise SandboxError(f"unknown key_type {key_type!r}: use 'ec' or 'rsa'")


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hostname: str) -> x509.GeneralName:
    """IP SAN for addresses (clients match those, not DNS names), DNS SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


def _sign(builder: x509.CertificateBuilder, key: PrivateKey, hash_alg: str) -> x509.Certificate:
    try:
        algorithm = _HASHES[hash_alg]()
    except KeyError:
        raise SandboxError(f"unknown hash_alg {hash_alg!r}: use 'sha256' or 'sha1'") from None
    try:
        # the stubs leave SHA-1 out of sign()'s type; asking for it is the point here
        return builder.sign(key, algorithm)  # type: ignore[arg-type]
    except (UnsupportedAlgorithm, ValueError, InternalError) as e:
        # cryptography 4x+ and OpenSSL 3 security levels refuse SHA-1 signatures outright
        raise SandboxError(
            f"the installed cryptography/OpenSSL refuses to sign with {hash_alg} ({e}); "
            "check sha1_signing_supported() before asking for SHA-1 certificates"
        ) from e


@functools.cache
def sha1_signing_supported() -> bool:
    """Whether this cryptography/OpenSSL build still signs certificates with SHA-1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sha1 probe")])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    try:
        _sign(builder, key, "sha1")
    except SandboxError:
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    """Create the key file 0600 from the start, so it is never briefly world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that already existed


@dataclass(frozen=True)
class IssuedCert:
    """A leaf certificate and its private key, as PEM."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    hostnames: tuple[str, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def write(self, directory: str | Path, name: str = "server") -> tuple[Path, Path]:
        """Write <name>.crt and <name>.key (mode 0600) into directory; return both paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = d / f"{name}.crt", d / f"{name}.key"
        cert_path.write_bytes(self.cert_pem)
        _write_private(key_path, self.key_pem)
        return cert_path, key_path


class CertAuthority:
    """A self-signed CA that issues server certificates."""

    def __init__(self, name: str, key: PrivateKey, certificate: x509.Certificate) -> None:
        self.name = name
        self.key = key
        self.certificate = certificate

    @property
    def ca_cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_ca(self, directory: str | Path, filename: str = "ca.pem") -> Path:
        """Write the CA certificate (public) where clients can point caFile at it."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / filename
        path.write_bytes(self.ca_cert_pem)
        return path

    def issue_intermediate(self, name: str, *, days_valid: int = 1825) -> CertAuthority:
        """An intermediate CA under this one (which needs path_length >= 1), as public CAs use."""
        key = _new_key("ec", 256)
        start = self.certificate.not_valid_before_utc
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days_valid))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .add_extension(_ca_key_usage(), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        return CertAuthority(name, key, _sign(builder, self.key, "sha256"))

    def issue(
        self,
        hostnames: list[str],
        *,
        days_valid: int = 90,
        not_before: dt.datetime | None = None,
        key_type: KeyType = "ec",
        key_bits: int = 2048,
        hash_alg: HashAlg = "sha256",
        expired: bool = False,
    ) -> IssuedCert:
        """A server certificate for hostnames; expired=True ends its validity yesterday."""
        if not hostnames:
            raise SandboxError("issue() needs at least one hostname")
        if expired:
            not_after = _now() - dt.timedelta(days=1)
            start = not_after - dt.timedelta(days=days_valid)
        else:
            start = not_before or (_now() - dt.timedelta(minutes=5))  # tolerate clock skew
            not_after = start + dt.timedelta(days=days_valid)
        key = _new_key(key_type, key_bits)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in hostnames]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=key_type == "rsa",
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        cert = _sign(builder, self.key, hash_alg)
        return IssuedCert(
            cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), tuple(hostnames)
        )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_encipherment=False,
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    name: str = "maintcheck sandbox CA",
    *,
    days_valid: int = 3650,
    key_type: KeyType = "ec",
    valid_from: dt.datetime | None = None,
    path_length: int | None = 0,
) -> CertAuthority:
    """A fresh self-signed CA (EC P-256 by default: fast to generate).

    valid_from fixes its validity (valid_from to valid_from + days_valid) for tests that judge
    at a given date; path_length=1 lets it sign an intermediate (issue_intermediate).
    """
    key = _new_key(key_type, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    if valid_from is None:
        # backdated a year, so certificates issued as already expired were valid under it then
        start, end = _now() - dt.timedelta(days=365), _now() + dt.timedelta(days=days_valid)
    else:
        start, end = valid_from, valid_from + dt.timedelta(days=days_valid)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(_ca_key_usage(), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    return CertAuthority(name, key, _sign(builder, key, "sha256"))


def self_signed(hostnames: list[str], *, days_valid: int = 90) -> IssuedCert:
    """A server certificate that signed itself (no CA), as quick setups make."""
    key = _new_key("ec", 256)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    start = _now() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days_valid))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hostnames]), False)
    )
    cert = _sign(builder, key, "sha256")
    return IssuedCert(
        cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), tuple(hostnames)
    )
