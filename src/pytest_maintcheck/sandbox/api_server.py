"""A real threaded HTTP(S) API on 127.0.0.1 with health, latency, status, big-body, stats and
OIDC routes."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from pytest_maintcheck.sandbox.postgres import SandboxError

# markup and terminal escapes a report must neutralise, padded past any small read buffer
HOSTILE_BODY = (
    "<html><body><script>alert(1)</script>\x1b[31mRED\x1b[0m\x1b]0;owned\x07"
    + "A" * 10_240
    + "</body></html>"
)
MAX_SLOW_MS = 60_000
MAX_BIG_BYTES = 1024**3  # /big?bytes=N streams at most this much


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ec_public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The public JWK of a P-256 key, kid = its RFC 7638 thumbprint."""
    numbers = key.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    thumbprint = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return {
        **jwk,
        "use": "sig",
        "alg": "ES256",
        "kid": _b64url(hashlib.sha256(thumbprint).digest()),
    }


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a deep backlog, no reverse DNS and no traceback spam; it
    counts the connections open at once (accepted, not yet closed)."""

    daemon_threads = True
    request_queue_size = 256  # the default 5 drops bursts of concurrent connections
    api: SandboxApi

    def process_request(self, request: Any, client_address: Any) -> None:
        self.api._count_connection(+1)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.api._count_connection(-1)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a getfqdn() lookup that can stall for seconds
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up or fail the TLS handshake are normal here: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "maintcheck-sandbox/1"
    timeout = 30  # a silent client cannot pin a thread forever

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # here, in the worker thread, not in accept()

    def log_message(self, format: str, *args: Any) -> None:
        """No request logging: tests and demos read stderr."""

    def do_GET(self) -> None:
        api = self.server.api
        api._count_request()
        try:
            self._answer(api)
        finally:
            api._count_done()

    def _answer(self, api: SandboxApi) -> None:
        if api.latency_ms > 0:
            time.sleep(api.latency_ms / 1000)
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        if path == "/health":
            n = api._count_health()
            failing = api.fail_every > 0 and n % api.fail_every == 0
            status = 503 if failing else api.health_status
            state = "ok" if status < 400 else "unavailable"
            self._json(status, {"status": state, "build": {"version": api.version}})
        elif path == "/slow":
            try:
                ms = int(parse_qs(url.query).get("ms", ["0"])[0])
            except ValueError:
                self._json(400, {"error": "ms must be an integer"})
                return
            time.sleep(max(0, min(ms, MAX_SLOW_MS)) / 1000)
            self._json(200, {"status": "ok", "sleptMs": ms})
        elif path.startswith("/status/"):
            code = path.removeprefix("/status/")
            if code.isdigit() and 200 <= int(code) <= 599:
                self._json(int(code), {"status": int(code)})
            else:
                self._json(400, {"error": "status must be 200-599"})
        elif path == "/big":
            try:
                size = int(parse_qs(url.query).get("bytes", ["0"])[0])
            except ValueError:
                self._json(400, {"error": "bytes must be an integer"})
                return
            self._stream(max(0, min(size, MAX_BIG_BYTES)))
        elif path == "/stats.json":
            self._json(200, api.stats)
        elif path == "/hostile":
            self._send(200, HOSTILE_BODY.encode(), "text/html; charset=utf-8")
        elif path == "/.well-known/openid-configuration":
            self._json(200, api.discovery_document())
        elif path == "/jwks.json":
            self._json(200, {"keys": [] if api.oidc_empty_jwks else [api.jwk]})
        else:
            self._json(404, {"error": "not found", "path": path})

    def _stream(self, size: int) -> None:
        """``size`` bytes in 64 KiB writes, with no Content-Length: the end is the close."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b"a" * 65536
        try:
            while size > 0:
                self.wfile.write(chunk[: min(size, len(chunk))])
                size -= len(chunk)
        except OSError:  # the client stopped reading and hung up
            return

    def _json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status not in (204, 304):
            self.wfile.write(body)


class SandboxApi:
    """A local API with knobs (latency, failing health, broken OIDC) that tests can turn."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        ca_file: str | Path | None = None,
        latency_ms: int = 0,
        fail_every: int = 0,
        health_status: int = 200,
        oidc_empty_jwks: bool = False,
        oidc_missing_issuer: bool = False,
        oidc_overrides: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        backlog: int = 256,
        version: str = "1.0.0",
    ) -> None:
        if ssl_context is None and certfile is not None:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
        self._ssl_context = ssl_context
        self.ca_file = Path(ca_file) if ca_file is not None else None  # for clients to verify us
        self.host = host
        # listen(backlog): 5 is Python's socketserver default, and common in small services
        self.backlog = backlog
        self.latency_ms = latency_ms
        self.fail_every = fail_every
        self.health_status = health_status
        self.version = version  # what /health reports as the running version (a knob)
        self.oidc_empty_jwks = oidc_empty_jwks
        self.oidc_missing_issuer = oidc_missing_issuer
        # fields that replace the discovery document's own (e.g. a hostile issuer or jwks_uri)
        self.oidc_overrides: dict[str, Any] = dict(oidc_overrides or {})
        # what /stats.json answers: counters a metrics entry reads with a JSON Pointer
        self.stats: Any = {"cache": {"hitRatio": 0.97, "entries": 1200}, "queues": [{"depth": 3}]}
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = ec_public_jwk(self.signing_key)
        self._requests = 0
        self._health_requests = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self._connections = 0
        self._peak_connections = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SandboxApi:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> SandboxApi:
        """Bind a free port and serve from a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self.host, 0), _Handler, bind_and_activate=False)
        server.request_queue_size = self.backlog
        try:
            server.server_bind()
            server.server_activate()
        except OSError:
            server.server_close()
            raise
        server.api = self
        if self._ssl_context is not None:
            # handshake deferred to the handler thread so one slow client cannot block accept()
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-api-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _count_request(self) -> None:
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def _count_done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _count_connection(self, change: int) -> None:
        with self._lock:
            self._connections += change
            self._peak_connections = max(self._peak_connections, self._connections)

    def _count_health(self) -> int:
        """The 1-based number of this /health request, so fail_every=N fails every Nth."""
        with self._lock:
            self._health_requests += 1
            return self._health_requests

    @property
    def request_count(self) -> int:
        return self._requests

    @property
    def peak_in_flight(self) -> int:
        """The most requests this server was answering at the same moment (shows concurrency)."""
        return self._peak_in_flight

    @property
    def peak_connections(self) -> int:
        """The most client connections this server had open at the same moment."""
        return self._peak_connections

    @property
    def open_connections(self) -> int:
        return self._connections

    @property
    def port(self) -> int:
        if self._server is None:
            raise SandboxError("the API is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def discovery_document(self) -> dict[str, Any]:
        """A minimal OpenID Provider configuration pointing back at this server."""
        doc: dict[str, Any] = {
            "issuer": self.base_url,
            "jwks_uri": self.base_url + "/jwks.json",
            "authorization_endpoint": self.base_url + "/authorize",
            "token_endpoint": self.base_url + "/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }
        if self.oidc_missing_issuer:
            del doc["issuer"]
        doc.update(self.oidc_overrides)
        return doc


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections there (used to prove a stop really stopped)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
