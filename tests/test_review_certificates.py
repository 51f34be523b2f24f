"""Review finding: a certificate whose extensions cannot be parsed is one clear finding.

The certificate is real (signed by cryptography); only its subjectAltName extension holds bytes
that are not valid DER, as a broken issuing tool writes. OpenSSL refuses to serve such a
certificate, so the endpoint path (examine_endpoint, same _parsed guard) is not driven here.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from pytest_maintcheck.probes import certificates


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
