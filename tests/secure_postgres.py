"""A PostgreSQL cluster configured the secure way (TLS 1.2+, connection and DDL logging, data
checksums): settings that need a restart or a new cluster, so it is a second cluster beside
the session one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from pytest_maintcheck.sandbox import PostgresCluster, make_ca
from pytest_maintcheck.sandbox.services import hand_to_servers, server_files_dir

SECURE_SETTINGS = {
    "ssl": "on",
    "ssl_min_protocol_version": "TLSv1.2",
    "log_connections": "on",
    "log_disconnections": "on",
    "log_statement": "ddl",
    "password_encryption": "scram-sha-256",
}


@contextmanager
def secure_cluster_running() -> Iterator[PostgresCluster]:
    """TLS with a certificate from a CA made here (the key handed to the server's account)."""
    tls = server_files_dir("maintcheck-pg-tls-")
    try:
        cert, key = make_ca().issue(["127.0.0.1", "localhost"]).write(tls)
        hand_to_servers(tls)
        settings = {**SECURE_SETTINGS, "ssl_cert_file": str(cert), "ssl_key_file": str(key)}
        with PostgresCluster(settings=settings, initdb_args=("--data-checksums",)) as cluster:
            yield cluster
    finally:
        shutil.rmtree(tls, ignore_errors=True)
