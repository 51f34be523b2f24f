"""Real local parts (PostgreSQL, a CA, an HTTP(S) API) for the demo and the test suite."""

from __future__ import annotations

from pytest_maintcheck.sandbox.api_server import SandboxApi, port_is_open
from pytest_maintcheck.sandbox.postgres import (
    PostgresCluster,
    PostgresNotFoundError,
    SandboxDatabase,
    SandboxError,
    find_bindir,
    free_port,
)
from pytest_maintcheck.sandbox.tls import (
    CertAuthority,
    IssuedCert,
    make_ca,
    sha1_signing_supported,
)

__all__ = [
    "CertAuthority",
    "IssuedCert",
    "PostgresCluster",
    "PostgresNotFoundError",
    "SandboxApi",
    "SandboxDatabase",
    "SandboxError",
    "find_bindir",
    "free_port",
    "make_ca",
    "port_is_open",
    "sha1_signing_supported",
]
