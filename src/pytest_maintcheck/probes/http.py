"""HTTP(S) endpoint sampling with httpx, concurrent across a whole fleet."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pytest_maintcheck.probes.timing import p95
from pytest_maintcheck.redact import printable

DEFAULT_CONCURRENCY = 32
# bodies are read only for OIDC's JSON documents: a server pushing more is an error, not RAM
MAX_BODY_BYTES = 1024 * 1024
_BODY_TOO_LARGE = f"response body over {MAX_BODY_BYTES // (1024 * 1024)} MiB"
# the body is handed on decoded: these described the bytes on the wire
_WIRE_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


class _BodyTooLarge(Exception):
    """The response body passed MAX_BODY_BYTES; reading stopped there."""


@dataclass
class EndpointResult:
    """Every sample of one URL: latencies of the good ones, a reason for each bad one."""

    url: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: int = 0

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


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, through httpx, httpcore and anyio's wrappers."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        chain.extend(getattr(seen, "exceptions", ()))
        seen = seen.__cause__ or seen.__context__
    return chain


def describe_error(exc: BaseException, timeout: float) -> str:
    """One line an operator understands, with nothing the server sent verbatim."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return "TLS certificate not trusted: " + printable(text.split("]")[-1].strip(), 120)
        causes = _causes(exc)
        if "refused" in text.lower() or any(isinstance(c, ConnectionRefusedError) for c in causes):
            return "connection refused"
        return "cannot connect: " + printable(text, 120)
    return f"{type(exc).__name__}: {printable(exc, 120)}"


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


async def fetch(
    client: httpx.AsyncClient, url: str, timeout: float
) -> tuple[float | None, httpx.Response | None, str | None]:
    """One timed GET: (ms, response, error). Non-2xx/3xx is an error, and so is a body over
    MAX_BODY_BYTES (it is never read whole)."""
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(_get(client, url, timeout), timeout + 1)
    except _BodyTooLarge:
        return (time.perf_counter() - started) * 1000, None, _BODY_TOO_LARGE
    # InvalidURL is no HTTPError: a control code in a URL (say a hostile jwks_uri) raises it
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, ssl.SSLError, OSError) as exc:
        if isinstance(exc, TimeoutError):
            return None, None, f"timed out after {timeout:g}s"
        return None, None, describe_error(exc, timeout)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        return elapsed, response, f"HTTP {response.status_code}"
    return elapsed, response, None


async def sample_endpoint(
    client: httpx.AsyncClient, url: str, samples: int, timeout: float
) -> EndpointResult:
    """``samples`` GETs one after another (so one endpoint is not hammered)."""
    result = EndpointResult(url)
    for _ in range(samples):
        elapsed, _response, error = await fetch(client, url, timeout)
        result.samples += 1
        if error is None and elapsed is not None:
            result.latencies_ms.append(elapsed)
        else:
            result.errors.append(error or "no answer")
    return result


class ClientPool:
    """One AsyncClient per trust store, so connections are reused across a fleet."""

    def __init__(self) -> None:
        self._clients: dict[Path | None, httpx.AsyncClient] = {}

    def get(self, ca_file: Path | None) -> httpx.AsyncClient:
        if ca_file not in self._clients:
            self._clients[ca_file] = httpx.AsyncClient(
                verify=tls_context(ca_file),
                follow_redirects=False,
                headers={"User-Agent": "pytest-maintcheck"},
                limits=httpx.Limits(max_connections=DEFAULT_CONCURRENCY * 2),
            )
        return self._clients[ca_file]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


async def gather_limited(
    jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int = DEFAULT_CONCURRENCY
) -> list[Any]:
    """Run jobs concurrently, at most ``concurrency`` at a time, results in order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))
