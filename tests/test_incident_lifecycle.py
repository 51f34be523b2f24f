"""Issue 12 (points 1, 2, 6, 7): the incident lifecycle across real runs, notifications to real
local receivers (answering, down, hanging) and a real SMTP server, maintenance windows and the
status page."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from check_runs import read_record, run_dirs
from pytest_maintcheck.cli import main as maintcheck
from pytest_maintcheck.incident_store import IncidentStore

pytest_plugins = ["pytester"]

TOKEN = "hook-token-5f3a9c1e7b"

CHECKS = """
import json, pathlib, pytest
from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold.parse("responseTime", {"warn": 300, "fail": 800})
LOGINS = Threshold.parse("perAccount", {"warn": 5, "fail": 10})
VALUES = json.loads((pathlib.Path(__file__).parent / "values.json").read_text())

@pytest.mark.maintcheck("health")
@pytest.mark.parametrize("value", list(VALUES["health"].values()), ids=list(VALUES["health"]))
def test_latency(value, assessment):
    assessment.measure(LIMIT, value, subject="api.internal.example")

@pytest.mark.maintcheck("failed_logins")
@pytest.mark.parametrize("value", list(VALUES["logins"].values()), ids=list(VALUES["logins"]))
def test_logins(value, assessment):
    assessment.measure(LOGINS, value, subject="account 'alice.smith'")
"""

BASE = """\
version: 1
system: Cardiology
environment: production
owners: {default: dba-oncall}
healthChecks:
  - service: clinical-api
    type: api
    endpoint: https://api.internal.example/health
    alerts: {channels: [ops], escalation: [lead]}
"""


# ---------------------------------------------------------------------------- receivers


class Receiver(ThreadingHTTPServer):
    """A real webhook endpoint on 127.0.0.1 that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook?token={TOKEN}"

    def events(self) -> list[str]:
        return [b["event"] for b in self.bodies]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        server: Receiver = self.server  # type: ignore[assignment]
        server.bodies.append(json.loads(self.rfile.read(length)))
        server.paths.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def down_url() -> str:
    """A port nothing listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook?token={TOKEN}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook?token={TOKEN}"
    stop.set()
    for conn in held:
        conn.close()
    listener.close()


# ---------------------------------------------------------------------------- helpers


class Project:
    def __init__(self, pytester: pytest.Pytester, config: str) -> None:
        self.pytester = pytester
        self.config = pytester.makefile(".yaml", maintcheck=config)
        pytester.makepyfile(test_checks=CHECKS)
        self.reports = pytester.path / "reports"

    def run(self, health: int | None = 100, logins: int | None = None) -> pytest.RunResult:
        values = {
            "health": {} if health is None else {"clinical-api": health},
            "logins": {} if logins is None else {"auth": logins},
        }
        (self.pytester.path / "values.json").write_text(json.dumps(values))
        return self.pytester.runpytest()

    def newest(self) -> Path:
        return run_dirs(self.reports)[-1]

    def incidents(self) -> list[dict[str, Any]]:
        return list(read_record(self.newest(), "incidents.json"))

    def cli(self, *args: str) -> int:
        return maintcheck([*args, "--report-dir", str(self.reports), "--config", str(self.config)])


def _alerts(**channels: str) -> str:
    """Channels by name; ``lead`` (the escalation of BASE) is ops's receiver unless given."""
    if "lead" not in channels and "ops" in channels:
        channels["lead"] = channels["ops"] + "&lead=1"
    lines = "".join(f"    {name}: {{webhook: '{url}'}}\n" for name, url in channels.items())
    return "alerts:\n  channels:\n" + lines


# ---------------------------------------------------------------------------- 1. lifecycle


def test_one_incident_across_runs_acked_stepped_resolved_with_a_postmortem(
    pytester: pytest.Pytester,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPS_WEBHOOK_URL", receiver.url)
    project = Project(
        pytester,
        BASE + "alerts:\n  channels:\n    ops: {webhook: '${OPS_WEBHOOK_URL}'}\n"
        "    lead: {webhook: '${OPS_WEBHOOK_URL}&lead=1'}\n",
    )
    assert project.run(health=900).ret == 1
    (first,) = project.incidents()
    assert (first["check"], first["target"]) == ("health", "clinical-api")
    assert (first["system"], first["environment"]) == ("Cardiology", "production")
    assert first["occurrences"] == 1
    assert first["notified"] == ["ops"]  # high, not critical: no escalation channel
    assert receiver.events() == ["detected"]

    assert project.run(health=950).ret == 1
    (second,) = project.incidents()
    assert second["id"] == first["id"]  # the same failure updates the open incident
    assert second["occurrences"] == 2
    assert second["lastSeen"] >= first["lastSeen"]
    assert second["timeline"]["detected"] == first["timeline"]["detected"]
    assert "950 ms" in second["description"]
    assert receiver.events() == ["detected"]  # nobody is told twice

    capsys.readouterr()
    assert project.cli("incident", "list") == 0
    listed = capsys.readouterr().out
    assert first["id"] in listed
    assert "open" in listed
    assert "2 run(s)" in listed
    assert "1. [pending]" in listed

    assert project.cli("incident", "ack", first["id"], "--by", "alice") == 0
    assert project.cli("incident", "step", first["id"][:7], "4", "--status", "completed") == 0
    assert project.cli("incident", "step", first["id"], "9", "--status", "completed") == 4
    assert project.cli("incident", "ack", "INC-000000", "--by", "bob") == 4
    assert project.cli("incident", "ack", first["id"]) == 4  # --by is required
    out = capsys.readouterr()
    assert f"{first['id']} acknowledged by alice; step 1 in progress" in out.out
    assert "has steps 1 to 6; there is no 9" in out.err
    assert "Traceback" not in out.err
    assert receiver.events() == ["detected", "status", "status"]
    assert receiver.bodies[1]["incident"]["acknowledgedBy"] == "alice"

    assert project.run(health=100).ret == 0
    run = project.newest()
    (resolved,) = project.incidents()
    assert resolved["id"] == first["id"]
    assert resolved["timeline"]["responded"]
    assert resolved["timeline"]["resolved"]
    statuses = [s["status"] for s in resolved["steps"]]
    assert statuses == ["in-progress", "pending", "pending", "completed", "pending", "completed"]
    assert receiver.events() == ["detected", "status", "status", "resolved"]
    postmortem = (run / f"postmortem-{first['id']}.md").read_text()
    for part in (
        "## Timeline",
        "## Impact",
        "## Findings",
        "950 ms",
        "dba-oncall",
        "## Open follow-ups",
        "- [ ] Implement the fix",
        "acknowledged by alice",
    ):
        assert part in postmortem, part
    # a fourth passing run: nothing open, nothing said
    assert project.run(health=100).ret == 0
    assert project.incidents() == []
    assert len(receiver.bodies) == 4
    for body in receiver.bodies:
        assert TOKEN not in json.dumps(body)
        assert body["text"].count("\n") == 0
    assert all(p.startswith("/hook?token=") for p in receiver.paths)


def test_after_two_failing_runs_flapping_is_not_notified(
    pytester: pytest.Pytester, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_WEBHOOK_URL", receiver.url)
    project = Project(
        pytester,
        BASE + _alerts(ops="${OPS_WEBHOOK_URL}", lead="${OPS_WEBHOOK_URL}") + "  after: 2\n",
    )
    project.run(health=900)
    (flap,) = project.incidents()
    assert flap["notified"] == []
    project.run(health=100)  # resolved before anyone was told: no resolution notice either
    (gone,) = project.incidents()
    assert gone["timeline"]["resolved"]
    assert not (project.newest() / f"postmortem-{gone['id']}.md").exists()
    assert receiver.bodies == []
    project.run(health=900)
    (again,) = project.incidents()
    assert again["id"] != flap["id"]  # a new incident, after the earlier one resolved
    assert receiver.bodies == []
    project.run(health=900)
    assert receiver.events() == ["detected"]
    assert project.incidents()[0]["occurrences"] == 2


def test_a_down_and_a_hanging_channel_are_logged_and_do_not_hold_the_run(
    pytester: pytest.Pytester,
    receiver: Receiver,
    down_url: str,
    hanging_url: str,
) -> None:
    project = Project(
        pytester,
        BASE.replace("channels: [ops], escalation: [lead]", "channels: [ops, down, hang]")
        + _alerts(ops=receiver.url, down=down_url, hang=hanging_url)
        + "  timeout: 3s\n",
    )
    started = time.monotonic()
    result = project.run(health=900)
    elapsed = time.monotonic() - started
    assert result.ret == 1  # the violation's exit status, not the channels'
    assert elapsed < 20  # bounded by alerts.timeout (3s), never by a hanging channel
    log = read_record(project.newest(), "maintenance-log.json")
    outcomes = {o["channel"]: o for o in log["notifications"]}
    assert outcomes["ops"]["delivered"] is True
    assert outcomes["down"]["delivered"] is False
    assert outcomes["down"]["attempts"] >= 2  # retried with backoff inside the bound
    assert "ConnectError" in outcomes["down"]["error"]
    assert outcomes["hang"]["delivered"] is False
    assert "Timeout" in outcomes["hang"]["error"] or "no answer" in outcomes["hang"]["error"]
    out = result.stdout.str()
    assert "to channel down not delivered" in out
    assert "to channel hang not delivered" in out
    (incident,) = project.incidents()
    assert incident["notified"] == ["ops"]
    records = "".join(p.read_text() for p in project.newest().glob("*.json"))
    assert TOKEN not in out + records
    assert TOKEN not in json.dumps(IncidentStore(project.reports).all())  # the kept state
    # the next run tells the channels that missed it, and only those
    project.run(health=900)
    log = read_record(project.newest(), "maintenance-log.json")
    assert sorted(o["channel"] for o in log["notifications"]) == ["down", "hang"]


def test_login_monitoring_usernames_reach_a_channel_only_when_allowed(
    pytester: pytest.Pytester, receiver: Receiver
) -> None:
    project = Project(pytester, BASE + _alerts(ops=receiver.url))
    project.run(health=None, logins=12)
    assert len(receiver.bodies) == 2  # no route for security incidents: every channel
    assert "alice.smith" in json.dumps(project.incidents())  # the record keeps it
    for body in receiver.bodies:
        assert "alice.smith" not in json.dumps(body)
        assert "withheld" in body["incident"]["description"]
    receiver.bodies.clear()
    allowed = Project(pytester, BASE + _alerts(ops=receiver.url) + "  includeUsernames: true\n")
    with IncidentStore(allowed.reports).open("Cardiology", "production") as held:
        held.save([], datetime.now(UTC))  # forget the incident: the next run opens it anew
    for folder in run_dirs(allowed.reports):
        (folder / "incidents.json").write_text("[]")
    allowed.run(health=None, logins=12)
    assert len(receiver.bodies) == 2
    assert all("alice.smith" in json.dumps(body) for body in receiver.bodies)


def test_an_email_channel_through_apprise_reaches_a_real_smtp_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):  # type: ignore[misc]
        def handle_message(self, message: Any) -> None:
            received.append(message)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv(
            "ONCALL_APPRISE_URL",
            f"mailto://127.0.0.1:{port}?from=maintcheck@example.org&to=oncall@example.org",
        )
        project = Project(
            pytester,
            BASE.replace("channels: [ops], escalation: [lead]", "channels: [oncall]")
            + "alerts:\n  channels:\n    oncall: {url: '${ONCALL_APPRISE_URL}'}\n",
        )
        project.run(health=900)
        log = read_record(project.newest(), "maintenance-log.json")
        assert log["notifications"][0]["delivered"] is True, log["notifications"]
    finally:
        controller.stop()
    (mail,) = received
    assert mail["To"] == "oncall@example.org"
    assert "incident opened" in mail["Subject"]
    body = (
        mail.get_payload(decode=True)
        if not mail.is_multipart()
        else mail.get_payload()[0].get_payload(decode=True)
    )
    text = body.decode()
    assert '"severity": "high"' in text
    assert '"target": "clinical-api"' in text


# ---------------------------------------------------------------------------- 6. windows


def _window_now(targets: str) -> str:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"maintenanceWindows:\n  - {{name: api-upgrade, targets: [{targets}], start: {start},"
        f" end: {end}, reason: 'API 2.4 rollout', ticket: CHG-1042}}\n"
    )


def test_a_window_silences_a_failing_target_without_hiding_it(
    pytester: pytest.Pytester, receiver: Receiver
) -> None:
    project = Project(pytester, BASE + _alerts(ops=receiver.url) + _window_now("'clinical-*'"))
    result = project.run(health=900)
    assert result.ret == 0  # does not fail the gate
    result.stdout.fnmatch_lines(["*1 skipped, 1 in maintenance*"])
    result.stdout.fnmatch_lines(["VIOLATION (in maintenance: api-upgrade) [[]high] test_latency*"])
    checks = read_record(project.newest(), "results.json")["checks"]
    (check,) = [c for c in checks if c["check"] == "health"]
    assert check["verdict"] == "violation"  # recorded as measured
    assert check["inMaintenance"] is True
    assert check["maintenanceWindow"] == {
        "name": "api-upgrade",
        "reason": "API 2.4 rollout",
        "ticket": "CHG-1042",
    }
    assert check["details"]["excludedFromAvailability"] is True
    (health,) = read_record(project.newest(), "health.json")
    assert health["status"] == "down"
    assert health["inMaintenance"] is True
    assert project.incidents() == []
    assert receiver.bodies == []  # nobody paged
    status = (project.reports / "status.html").read_text()
    assert "Planned maintenance" in status
    # the same failure outside the window is an incident again
    project.config.write_text(BASE + _alerts(ops=receiver.url))
    assert project.run(health=900).ret == 1
    assert receiver.events() == ["detected"]


# ---------------------------------------------------------------------------- 7. status page


def test_the_status_page_speaks_to_clinicians_without_internals(
    pytester: pytest.Pytester, receiver: Receiver
) -> None:
    project = Project(
        pytester,
        BASE
        + _alerts(ops=receiver.url)
        + _window_now("nothing-now").replace("api-upgrade", "later"),
    )
    project.run(health=100)
    project.run(health=900)
    page = (project.reports / "status.html").read_text()
    assert "<meta name='viewport'" in page
    assert "clinical-api" in page
    assert "Outage" in page
    assert "50.00% uptime (30 days)" in page
    assert "We are aware of a problem and are investigating." in page
    for internal in ("api.internal.example", "900 ms", "responseTime", "p95", "INC-", TOKEN):
        assert internal not in page, internal
    assert "src=" not in page
    assert "href=" not in page
    project.cli(
        "incident",
        "ack",
        project.incidents()[0]["id"],
        "--by",
        "alice",
        "--public",
        "The results viewer is slow; <b>we</b> are on it.",
    )
    page = (project.reports / "status.html").read_text()
    assert "we are on it" in page.replace("&lt;b&gt;we&lt;/b&gt;", "we")
    assert "<b>" not in page
    project.run(health=100)
    page = (project.reports / "status.html").read_text()
    assert "Operating normally" in page
    assert "66.67% uptime (30 days)" in page
    assert "No current incidents." in page
