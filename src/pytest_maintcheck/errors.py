"""The one error a probe raises when it could not measure: which target, where, and why.

A check lets a ``MeasurementError`` escape; the plugin turns it into a could-not-measure
violation whose action is about reaching the target (never the check's runbook action, which
assumes the target answered), and the terminal summary groups the checks that failed for the
same target and cause under one line.

    raise MeasurementError("cannot connect to postgresql://db:5432/x: ...",
                           cause=Cause.REFUSED, where="db:5432", target="primary")

``str(error)`` is the detail as given; every attribute is safe to print (the raiser passes
text through ``redact.printable`` and masks DSN passwords).
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum


class Cause(StrEnum):
    """Why a target could not be measured, in the operator's words."""

    REFUSED = "connection refused"
    TIMED_OUT = "timed out"
    NAME_NOT_RESOLVED = "name not resolved"
    NETWORK_UNREACHABLE = "network unreachable"
    AUTHENTICATION_FAILED = "authentication failed"
    TLS_FAILED = "TLS failed"
    HTTP_STATUS = "answered HTTP"  # the target answered, with an error status
    NOT_FOUND = "not found"
    PERMISSION_DENIED = "permission denied"
    MISSING_PRIVILEGE = "missing privilege"
    FAILED = "failed"  # anything else: the detail says what


# What to do about each cause; {where} is the address (host:port, URL or path) tried.
_ACTIONS: dict[Cause, str] = {
    Cause.REFUSED: (
        "Nothing accepts connections at {where}: start the service, or correct its host and "
        "port in the config; then re-run the checks."
    ),
    Cause.TIMED_OUT: (
        "{where} did not answer in time: check that the host is up and that the network and "
        "firewalls let this runner reach it; then re-run the checks."
    ),
    Cause.NAME_NOT_RESOLVED: (
        "The host name of {where} does not resolve: correct it in the config, or fix this "
        "runner's DNS; then re-run the checks."
    ),
    Cause.NETWORK_UNREACHABLE: (
        "This runner has no route to {where}: check its network, VPN and routing; then re-run "
        "the checks."
    ),
    Cause.AUTHENTICATION_FAILED: (
        "{where} refused this runner's credentials: check the monitoring role or account and "
        "its password (PGPASSWORD, ~/.pgpass) or token; then re-run the checks."
    ),
    Cause.TLS_FAILED: (
        "The TLS handshake with {where} failed: check its certificate chain and name against "
        "caFile or the system trust store; then re-run the checks."
    ),
    Cause.HTTP_STATUS: (
        "{where} answered, but with an error status: check the URL in the config and the "
        "service's routing and logs; then re-run the checks."
    ),
    Cause.NOT_FOUND: (
        "{where} does not exist: correct the path or name in the config, or restore it; then "
        "re-run the checks."
    ),
    Cause.PERMISSION_DENIED: (
        "This runner's account may not read {where}: grant it read access; then re-run the checks."
    ),
    Cause.MISSING_PRIVILEGE: (
        "The monitoring role lacks a privilege on {where}: grant the one named (for PostgreSQL "
        "usually pg_monitor); then re-run the checks."
    ),
    Cause.FAILED: (
        "The measurement of {where} failed: fix what the message names, check that this runner "
        "can reach the target; then re-run the checks."
    ),
}


class MeasurementError(Exception):
    """A measurement that could not be made; everything in it is safe to print.

    ``cause``: why (a :class:`Cause`); ``where``: the address tried (``host:port``, a URL, a
    path); ``target``: the config name of what was measured (``primary``, ``clinical-api``),
    filled in by the caller that knows it (see :meth:`about`); ``status``: the HTTP status
    when the target answered with an error.
    """

    def __init__(
        self,
        detail: str,
        *,
        cause: Cause = Cause.FAILED,
        where: str | None = None,
        target: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.cause = cause
        self.where = where
        self.target = target
        self.status = status

    def about(self, target: str) -> MeasurementError:
        """Name the config target this error is about, unless a deeper caller already did."""
        if self.target is None:
            self.target = target
        return self

    def reworded(self, detail: str) -> MeasurementError:
        """The same failure with a fuller message (say, the grant that is missing)."""
        again = type(self)(
            detail, cause=self.cause, where=self.where, target=self.target, status=self.status
        )
        again.__traceback__ = self.__traceback__
        return again

    @property
    def reason(self) -> str:
        """The cause and the address: 'connection refused at 127.0.0.1:5999'."""
        cause = f"answered HTTP {self.status}" if self.status is not None else str(self.cause)
        return f"{cause} at {self.where}" if self.where else cause

    @property
    def action(self) -> str:
        """What to do: reach the target first; a runbook action assumes it answered."""
        return _ACTIONS[self.cause].format(where=self.where or "the target")

    def unmeasured(self) -> Unmeasured:
        """The plain record of this failure, as findings and the summary carry it."""
        return Unmeasured(self.target, str(self.cause), self.where, self.reason, self.status)


@dataclass(frozen=True)
class Unmeasured:
    """Why a finding is "could not measure": the part the terminal summary groups by."""

    target: str | None
    cause: str
    where: str | None
    reason: str
    status: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "cause": self.cause,
            "where": self.where,
            "reason": self.reason,
            "status": self.status,
        }


def cause_of_os_error(exc: BaseException) -> Cause:
    """The cause behind a socket-level failure (refused, timed out, unresolved, TLS ...)."""
    for seen in _chain(exc):
        found = _os_cause(seen)
        if found is not None:
            return found
    return Cause.FAILED


def _os_cause(exc: BaseException) -> Cause | None:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Cause.TLS_FAILED
    if isinstance(exc, socket.gaierror):
        return Cause.NAME_NOT_RESOLVED
    if isinstance(exc, ConnectionRefusedError):
        return Cause.REFUSED
    if isinstance(exc, TimeoutError | socket.timeout):
        return Cause.TIMED_OUT
    if isinstance(exc, FileNotFoundError):
        return Cause.NOT_FOUND
    if isinstance(exc, PermissionError):
        return Cause.PERMISSION_DENIED
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Cause.NETWORK_UNREACHABLE
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what caused it and what it groups, through library wrappers."""
    out: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(out) < 20:
        seen = todo.pop(0)
        if any(seen is o for o in out):
            continue
        out.append(seen)
        todo.extend(getattr(seen, "exceptions", ()))
        nxt = seen.__cause__ or seen.__context__
        if nxt is not None:
            todo.append(nxt)
    return out
