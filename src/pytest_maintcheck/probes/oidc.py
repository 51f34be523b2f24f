"""An identity provider answers: OpenID discovery document, issuer, and a JWKS with keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from pytest_maintcheck.errors import MeasurementError
from pytest_maintcheck.probes.http import ConnectionGates, EndpointResult, fetch, take_sample
from pytest_maintcheck.redact import printable


@dataclass
class OidcResult(EndpointResult):
    """Discovery samples like an API, plus what the documents said."""

    issuer: str | None = None
    jwks_keys: int | None = None
    problems: list[str] = field(default_factory=list)


def _json_object(response: httpx.Response) -> dict[str, object] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def probe_oidc(
    client: httpx.AsyncClient,
    url: str,
    samples: int,
    timeout: float,
    gates: ConnectionGates | None = None,
) -> OidcResult:
    """Sample the discovery document, then follow its ``jwks_uri`` once."""
    result = OidcResult(url)
    document: dict[str, object] | None = None
    for _ in range(samples):
        got = await take_sample(client, url, timeout, gates)
        result.samples += 1
        if got.failure is None and got.elapsed_ms is not None and got.response is not None:
            result.latencies_ms.append(got.elapsed_ms)
            document = _json_object(got.response) or document
        else:
            result.add_failure(got.elapsed_ms, got.failure or MeasurementError("no answer"))
    if not result.latencies_ms:
        return result
    if document is None:
        result.problems.append("discovery document is not a JSON object")
        return result
    issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
    if not isinstance(issuer, str) or not issuer:
        result.problems.append("discovery document names no issuer")
    else:
        result.issuer = printable(issuer, 200)
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        result.problems.append("discovery document names no jwks_uri")
        return result
    _elapsed, response, error = await fetch(client, jwks_uri, timeout, gates)
    if error is not None or response is None:
        result.problems.append(f"JWKS at {printable(jwks_uri, 120)} failed: {error}")
        return result
    jwks = _json_object(response)
    keys = jwks.get("keys") if jwks else None
    result.jwks_keys = len(keys) if isinstance(keys, list) else 0
    if not result.jwks_keys:
        result.problems.append("JWKS holds no signing keys")
    return result
