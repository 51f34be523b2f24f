"""HTTP(S) endpoint sampling with httpx, concurrent across a whole fleet."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pytest_maintcheck.config import Probing
from pytest_maintcheck.errors import Cause, MeasurementError, cause_of_os_error
from pytest_maintcheck.probes.timing import p95
from pytest_maintcheck.redact import printable

# Probes in flight across the whole fleet (HTTP requests and blocking probes alike), and
# connections open at once to one host:port: a burst of connects past the target's listen
# backlog overflows its accept queue, and the SYN retry adds a second to healthy services.
DEFAULT_CONCURRENCY = Probing.concurrency
DEFAULT_PER_HOST = Probing.connections_per_host
# bodies are read only for OIDC's JSON documents: a server pushing more is an error, not RAM
MAX_BODY_BYTES = 1024 * 1024
_BODY_TOO_LARGE = f"response body over {MAX_BODY_BYTES // (1024 * 1024)} MiB"
# the body is handed on decoded: these described the bytes on the wire
_WIRE_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


class _BodyTooLarge(Exception):
    """The response body passed MAX_BODY_BYTES; reading stopped there."""


@dataclass
class EndpointResult:
    """Every sample of one URL: latencies of the good ones, a reason for each bad one.

    ``failed_ms``: for each failed sample, the time until it failed or timed out;
    ``failure``: the first failure, classified (refused, timed out, answered HTTP 404 ...).
    """

    url: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: int = 0
    failed_ms: list[float] = field(default_factory=list)
    failure: MeasurementError | None = None
    version: str | None = None  # read at the health check's versionPointer
    version_problem: str | None = None  # why it could not be read

    def add_failure(self, elapsed_ms: float | None, error: MeasurementError) -> None:
        """One failed sample: its reason, and how long until it failed."""
        self.errors.append(str(error))
        if elapsed_ms is not None:
            self.failed_ms.append(elapsed_ms)
        self.failure = self.failure or error

    @property
    def error_rate(self) -> float:
        return len(self.errors) / self.samples if self.samples else 1.0

    @property
    def p95_ms(self) -> float | None:
        return p95(self.latencies_ms)

    @property
    def reachable(self) -> bool:
        return bool(self.latencies_ms)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification on, always; a private CA is added to, not instead of, the system store."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def describe_error(exc: BaseException, timeout: float) -> str:
    """One line an operator understands, with nothing the server sent verbatim."""
    return classify_error(exc, timeout, "").detail


_UNRESOLVED = ("name or service not known", "temporary failure in name resolution", "nodename")


def classify_error(exc: BaseException, timeout: float, url: str) -> MeasurementError:
    """A failed request as a MeasurementError: why (refused, timed out, TLS ...) and where."""
    where = printable(url, 200) if url else None
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return MeasurementError(f"timed out after {timeout:g}s", cause=Cause.TIMED_OUT, where=where)
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            detail = "TLS certificate not trusted: " + printable(text.split("]")[-1].strip(), 120)
            return MeasurementError(detail, cause=Cause.TLS_FAILED, where=where)
        cause = cause_of_os_error(exc)
        if cause is Cause.FAILED and "refused" in text.lower():
            cause = Cause.REFUSED
        if cause is Cause.FAILED and any(words in text.lower() for words in _UNRESOLVED):
            cause = Cause.NAME_NOT_RESOLVED
        if cause is Cause.REFUSED:
            return MeasurementError("connection refused", cause=cause, where=where)
        return MeasurementError("cannot connect: " + printable(text, 120), cause=cause, where=where)
    cause = cause_of_os_error(exc)
    return MeasurementError(
        f"{type(exc).__name__}: {printable(exc, 120)}", cause=cause, where=where
    )


async def _get(client: httpx.AsyncClient, url: str, timeout: float) -> httpx.Response:
    """GET, streaming the body and stopping past MAX_BODY_BYTES; an error's body is not read."""
    async with client.stream(
        "GET", url, timeout=timeout, headers={"Accept-Encoding": "identity"}
    ) as streamed:
        if streamed.status_code >= 400:
            return httpx.Response(streamed.status_code, request=streamed.request)
        declared = streamed.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _BodyTooLarge
        body = bytearray()
        async for chunk in streamed.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise _BodyTooLarge  # leaving the block closes the connection unread
    headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
    return httpx.Response(
        streamed.status_code, headers=headers, content=bytes(body), request=streamed.request
    )


@dataclass
class Sample:
    """One timed GET: how long it took (until the answer, or until it failed), the response,
    and the failure if it was one."""

    elapsed_ms: float | None
    response: httpx.Response | None
    failure: MeasurementError | None


async def take_sample(
    client: httpx.AsyncClient, url: str, timeout: float, gates: ConnectionGates | None = None
) -> Sample:
    """One GET, timed from its own start: after a connection slot to its host is free, so
    waiting behind other probes is never counted as the target's latency."""
    async with (gates or _UNGATED).slot(host_key(url)):
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(_get(client, url, timeout), timeout + 1)
        except _BodyTooLarge:
            failure = MeasurementError(_BODY_TOO_LARGE, where=printable(url, 200))
            return Sample(_ms_since(started), None, failure)
        # InvalidURL is no HTTPError: a control code in a URL (say a hostile jwks_uri) raises it
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, ssl.SSLError, OSError) as exc:
            return Sample(_ms_since(started), None, classify_error(exc, timeout, url))
        elapsed = _ms_since(started)
    if response.status_code >= 400:
        status = response.status_code
        failure = MeasurementError(
            f"HTTP {status}", cause=Cause.HTTP_STATUS, where=printable(url, 200), status=status
        )
        return Sample(elapsed, response, failure)
    return Sample(elapsed, response, None)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def fetch(
    client: httpx.AsyncClient, url: str, timeout: float, gates: ConnectionGates | None = None
) -> tuple[float | None, httpx.Response | None, str | None]:
    """One timed GET: (ms, response, error). Non-2xx/3xx is an error, and so is a body over
    MAX_BODY_BYTES (it is never read whole); a failed GET's ms is the time until it failed."""
    got = await take_sample(client, url, timeout, gates)
    return got.elapsed_ms, got.response, str(got.failure) if got.failure else None


async def sample_endpoint(
    client: httpx.AsyncClient,
    url: str,
    samples: int,
    timeout: float,
    gates: ConnectionGates | None = None,
    version_pointer: str | None = None,
) -> EndpointResult:
    """``samples`` GETs one after another (so one endpoint is not hammered); the running
    version is read from the first answer's body at ``version_pointer``."""
    result = EndpointResult(url)
    for _ in range(samples):
        got = await take_sample(client, url, timeout, gates)
        result.samples += 1
        if got.failure is None and got.elapsed_ms is not None:
            result.latencies_ms.append(got.elapsed_ms)
            if version_pointer is not None and result.version is None and got.response:
                from pytest_maintcheck.change import read_version

                result.version, result.version_problem = read_version(
                    got.response.content, version_pointer
                )
        else:
            result.add_failure(got.elapsed_ms, got.failure or MeasurementError("no answer"))
    return result


def host_key(url: str) -> str | None:
    """scheme://host:port of a URL: connections are bounded per listening socket."""
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.host}:{port}"


class ConnectionGates:
    """At most ``per_host`` connections at once to one host:port, and ``total`` probes at
    once in all. The host slot is taken first, so probes queued for one busy host never hold
    a slot another host could use."""

    def __init__(self, per_host: int = DEFAULT_PER_HOST, total: int = DEFAULT_CONCURRENCY) -> None:
        self.per_host = max(1, per_host)
        self._total = asyncio.Semaphore(max(1, total))
        self._hosts: dict[str, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def slot(self, key: str | None) -> AsyncIterator[None]:
        """A slot for one probe of ``key`` (host:port; None for a probe with no host)."""
        host = self._hosts.setdefault(key, asyncio.Semaphore(self.per_host)) if key else None
        async with contextlib.AsyncExitStack() as stack:
            if host is not None:
                await stack.enter_async_context(host)
            await stack.enter_async_context(self._total)
            yield


class _Ungated:
    """No bound: a single probe outside a fleet."""

    @contextlib.asynccontextmanager
    async def slot(self, key: str | None) -> AsyncIterator[None]:
        yield


_UNGATED = _Ungated()


class ClientPool:
    """One AsyncClient per trust store and host:port, so connections are reused across a
    fleet. Per host, not one for all: httpx's pool walks all its connections for every
    request, which costs more CPU than the request itself with hundreds of connections."""

    def __init__(self, keepalive: int = DEFAULT_PER_HOST) -> None:
        self._clients: dict[tuple[Path | None, str | None], httpx.AsyncClient] = {}
        self._contexts: dict[Path | None, ssl.SSLContext] = {}  # loading a store takes ~10 ms
        self.keepalive = keepalive

    def get(self, ca_file: Path | None, url: str | None = None) -> httpx.AsyncClient:
        """The client for ``url``'s host:port (a shared one without a URL)."""
        key = (ca_file, host_key(url) if url is not None else None)
        if key not in self._clients:
            if ca_file not in self._contexts:
                self._contexts[ca_file] = tls_context(ca_file)
            self._clients[key] = httpx.AsyncClient(
                verify=self._contexts[ca_file],
                follow_redirects=False,
                headers={"User-Agent": "pytest-maintcheck"},
                # the fleet's gates bound connections; the pool must neither queue requests
                # (a sample's clock is running) nor close connections it will reuse
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=self.keepalive),
            )
        return self._clients[key]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
