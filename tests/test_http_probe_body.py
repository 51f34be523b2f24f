"""Review finding: an HTTP probe read whole response bodies, however large.

Bodies are streamed and reading stops past 1 MiB: a bigger one is an error for that sample.
The sandbox API's /big?bytes=N streams N bytes with no Content-Length, so only the count of
bytes actually read can stop it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from pytest_maintcheck.probes.http import fetch, sample_endpoint
from pytest_maintcheck.probes.oidc import probe_oidc
from pytest_maintcheck.sandbox import SandboxApi

T = TypeVar("T")
CAP = 1024 * 1024  # the cap: 1 MiB
BIG = 64 * 1024 * 1024  # 64 MiB: read whole, it would be held in memory


async def _with_client(work: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async with httpx.AsyncClient() as client:
        return await work(client)


def test_a_body_over_the_cap_is_an_error_for_each_sample(http_api: SandboxApi) -> None:
    url = http_api.url(f"/big?bytes={BIG}")
    result = asyncio.run(_with_client(lambda c: sample_endpoint(c, url, 2, 10)))
    assert result.errors == ["response body over 1 MiB", "response body over 1 MiB"]
    assert result.latencies_ms == []


def test_a_body_at_the_cap_is_read_whole(http_api: SandboxApi) -> None:
    url = http_api.url(f"/big?bytes={CAP}")
    elapsed, response, error = asyncio.run(_with_client(lambda c: fetch(c, url, 10)))
    assert error is None
    assert elapsed is not None
    assert response is not None
    assert response.content == b"a" * CAP


def test_an_oidc_provider_pushing_a_huge_jwks_is_a_problem(http_api: SandboxApi) -> None:
    http_api.oidc_overrides["jwks_uri"] = http_api.url(f"/big?bytes={BIG}")
    url = http_api.url("/.well-known/openid-configuration")
    result = asyncio.run(_with_client(lambda c: probe_oidc(c, url, 1, 10)))
    assert result.issuer == http_api.base_url  # the discovery document itself is small
    assert result.problems == [
        f"JWKS at {http_api.url(f'/big?bytes={BIG}')} failed: response body over 1 MiB"
    ]
