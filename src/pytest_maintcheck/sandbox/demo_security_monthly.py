"""Demo part for the monthly security review: an expiring certificate, a terminated employee
still enabled, a vulnerable pin with its advisory, and an overdue policy."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from pytest_maintcheck.sandbox.api_server import SandboxApi
from pytest_maintcheck.sandbox.demo_backups import MONITOR_ROLE, RESTORE_ROLE
from pytest_maintcheck.sandbox.postgres import SUPERUSER
from pytest_maintcheck.sandbox.tls import make_ca

if TYPE_CHECKING:
    from pytest_maintcheck.sandbox.demo import DemoContext

# A real advisory (requests leaked Proxy-Authorization on redirects), stored as OSV would
# publish it, so the demo runs offline.
REQUESTS_ADVISORY = {
    "id": "GHSA-x84v-xcm2-53pg",
    "aliases": ["CVE-2018-18074"],
    "summary": "Insufficiently Protected Credentials in Requests",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20.0"}]}],
        }
    ],
    "database_specific": {"severity": "HIGH"},
}


def security_monthly(ctx: DemoContext) -> None:
    """Certificates, access review, dependencies and policies for the monthly suite."""
    today = dt.datetime.now(dt.UTC).date()
    if ctx.ca is None or ctx.ca_file is None:  # the clinical_api part makes the demo CA
        ctx.ca = make_ca("maintcheck demo CA")
        ctx.ca_file = ctx.ca.write_ca(ctx.workdir / "tls-monthly")
    tls = ctx.workdir / "tls-expiring"
    # a 90-day certificate with 20 days left: inside the warning window (30 days, a third of its
    # lifetime) but not yet at the fail level (7 days)
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(days=70)
    cert, key = ctx.ca.issue(["127.0.0.1", "localhost"], not_before=issued, days_valid=90).write(
        tls
    )
    gateway = ctx.stack.enter_context(SandboxApi(certfile=cert, keyfile=key, ca_file=ctx.ca_file))
    entries = [
        {
            "name": "records-gateway",
            "host": f"127.0.0.1:{gateway.port}",
            "caFile": str(ctx.ca_file),
        },
        {"name": "demo-ca", "file": str(ctx.ca_file)},
    ]
    if ctx.api is not None:
        entries.insert(
            0,
            {
                "name": "clinical-api",
                "host": f"127.0.0.1:{ctx.api.port}",
                "caFile": str(ctx.ca_file),
            },
        )
    ctx.section("certificates", []).extend(entries)

    exports = ctx.workdir / "exports"
    exports.mkdir(exist_ok=True)
    recent = (today - dt.timedelta(days=3)).isoformat()
    (exports / "app_users.csv").write_text(
        "username,role,enabled,lastLogin,mfa\n"
        f"alice,admin,true,{recent},true\n"
        f"bob,clinician,true,{recent},true\n"
        f"carol,clinician,true,{recent},true\n"  # terminated last month, never disabled
        "dave,clinician,false,2024-01-10,true\n",
        encoding="utf-8",
    )
    superuser = ctx.cluster.superuser if ctx.cluster else SUPERUSER
    (exports / "staff.csv").write_text(
        "username,status\nalice,active\nbob,active\ncarol,terminated\ndave,terminated\n",
        encoding="utf-8",
    )
    sources: list[dict[str, str]] = [{"name": "app-users", "file": str(exports / "app_users.csv")}]
    service_accounts: list[dict[str, str]] = []
    if "primary" in ctx.config.get("databases", {}):
        sources.insert(0, {"name": "db-roles", "postgres": "primary"})
        # the demo's own roles are declared as what they are, so the review leads with carol
        service_accounts = [
            {"name": superuser, "owner": "alice", "justification": "the cluster's bootstrap role"},
            {"name": MONITOR_ROLE, "owner": "alice", "justification": "maintcheck (pg_monitor)"},
            {
                "name": RESTORE_ROLE,
                "owner": "alice",
                "justification": "maintcheck restore tests (CREATEDB)",
            },
        ]
    ctx.config["accessReview"] = {
        "sources": sources,
        "roster": str(exports / "staff.csv"),
        "inactive": {"warn": "60d", "fail": "90d"},
        "privilegedRoles": ["admin"],
        "approvedPrivileged": [superuser, "alice"],
        "requireMfa": True,
        "serviceAccounts": service_accounts,
    }

    backend = ctx.workdir / "backend"
    (backend / "advisories").mkdir(parents=True, exist_ok=True)
    (backend / "requirements.txt").write_text(
        "# pinned by pip-compile\nrequests==2.19.0\npsycopg==3.2.3\npackaging==24.1\n",
        encoding="utf-8",
    )
    (backend / "advisories" / "GHSA-x84v-xcm2-53pg.json").write_text(
        json.dumps(REQUESTS_ADVISORY, indent=2), encoding="utf-8"
    )
    ctx.section("dependencies", []).append(
        {
            "name": "backend",
            "lockfile": str(backend / "requirements.txt"),
            "advisories": str(backend / "advisories"),
        }
    )

    docs = ctx.workdir / "policies"
    docs.mkdir(exist_ok=True)
    overdue = today - dt.timedelta(days=400)
    (docs / "access-control.md").write_text(
        f"---\ntitle: Access control policy\nlast_reviewed: {overdue}\n---\n# Access control\n",
        encoding="utf-8",
    )
    (docs / "incident-response.md").write_text(
        f"---\nlast_reviewed: {today - dt.timedelta(days=20)}\n---\n# Incident response\n",
        encoding="utf-8",
    )
    ctx.section("policies", []).extend(
        [
            {
                "name": "Access control policy",
                "file": str(docs / "access-control.md"),
                "reviewEvery": "365d",
            },
            {
                "name": "Incident response plan",
                "file": str(docs / "incident-response.md"),
                "reviewEvery": "365d",
            },
        ]
    )
