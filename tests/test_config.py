"""The config contract: interpolation, units, thresholds, and one clear error per fault."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from example_config import EXAMPLE, example_environ
from pytest_maintcheck.config import ConfigError, load_config, schema
from pytest_maintcheck.units import parse_duration, parse_size
from pytest_maintcheck.verdict import Threshold, ThresholdError, Verdict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=env or {})
    return caught.value


def test_the_spec_example_loads_with_its_defaults() -> None:
    config = load_config(
        EXAMPLE,
        environ=example_environ(OPS_WEBHOOK_URL="https://hooks.invalid/T0/s3cr3t"),
    )
    assert config.system == "Cardiology Clinical Assistant"
    api = config.health_checks[0]
    assert (api.service, api.samples, api.timeout) == ("clinical-api", 5, 5.0)
    assert api.thresholds.get("responseTime") == Threshold("responseTime", 300.0, 800.0)
    assert api.thresholds.get("availability") == Threshold("availability", None, 0.999)
    viewer = next(h for h in config.health_checks if h.service == "ecg-viewer")
    assert len(viewer.endpoints) == 2
    db = config.database_maintenance[0]
    assert db.thresholds.get("vacuumAge") == Threshold("vacuumAge", 7 * 86400.0, 14 * 86400.0)
    assert db.thresholds.get("size") == Threshold("size", 50e9, 80e9)
    assert db.min_dead_tuples == 1000
    assert config.backups[0].max_age == 26 * 3600
    assert config.certificates[2].server_name == "sso.internal"
    assert config.certificates[2].port == 8443
    assert config.waivers[0].expires.isoformat() == "2027-01-31"
    assert config.access_review is not None
    assert config.access_review.service_account("MAINT") is not None
    assert config.backups[0].size_change == Threshold("sizeChange", 0.2, 0.5)
    assert "https://hooks.invalid/T0/s3cr3t" in config.secrets


def test_interpolation_with_defaults_and_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nsystem: ${SYSTEM_NAME:-fallback}\n"
        "healthChecks:\n  - service: api\n    type: api\n"
        "    endpoint: 'https://${API_HOST}/health'\n    samples: ${SAMPLES:-7}\n",
    )
    config = load_config(path, environ={"API_HOST": "api.internal"})
    assert config.system == "fallback"
    assert config.health_checks[0].endpoint == "https://api.internal/health"
    assert config.health_checks[0].samples == 7


def test_missing_variable_names_it_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nalerts:\n  channels:\n    ops: {webhook: '${OPS_HOOK}'}\n")
    err = error_of(path)
    assert err.line == 4
    assert "OPS_HOOK is not set" in str(err)
    assert str(err).startswith(f"{path}:4: alerts.channels.ops.webhook")


def test_unknown_key_suggests_the_nearest_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nhealthChecks:\n  - service: api\n    type: api\n    endpont: https://a/\n",
    )
    err = error_of(path)
    assert err.line == 5
    assert err.path == ("healthChecks", 0, "endpont")
    assert "did you mean 'endpoint'?" in str(err)


def test_unknown_section_suggests_too(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "version: 1\nhealthCheck: []\n"))
    assert "did you mean 'healthChecks'?" in str(err)
    assert err.line == 2


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("version: 2\n", 1, "must be 1"),
        ("system: x\n", 1, "'version' is required"),
        (
            "version: 1\nbackups:\n  - {name: b, kind: tape, location: /b, pattern: '*'}\n",
            3,
            "must be one of pg_dump, files",
        ),
        (
            "version: 1\nbackups:\n  - {name: b, kind: files, location: /b, pattern: '*',"
            " maxAge: soon}\n",
            3,
            "duration like",
        ),
        (
            "version: 1\nhealthChecks:\n  - {service: a, type: api, endpoint: 'ftp://x'}\n",
            3,
            "expected an http(s) URL",
        ),
        (
            "version: 1\nhealthChecks:\n  - {service: a, type: api, endpoint: 'http://h:99999/'}\n",
            3,
            "is not 1-65535",
        ),
        (
            "version: 1\nhealthChecks:\n  - {service: a, type: database, endpoint: replica}\n",
            3,
            "no database named 'replica'",
        ),
        (
            "version: 1\nhealthChecks:\n  - {service: a, type: api}\n",
            3,
            "exactly one of endpoint or endpoints",
        ),
        (
            "version: 1\nhealthChecks:\n  - {service: a, type: api, endpoint: 'https://a/',"
            " thresholds: {availability: {warn: 0.9, fail: 0.99}}}\n",
            3,
            "warn (0.9) must not be below fail (0.99)",
        ),
        (
            "version: 1\nwaivers:\n  - {check: x, justification: y, expires: 2027-02-30}\n",
            3,
            "expected a date",
        ),
        ("version: 1\nhealthChecks: [\n", 3, "not valid YAML"),
        (
            "version: 1\nsecurityMonitoring:\n  offHours: {start: '20:00', end: '06:00',"
            " timezone: Mars/Olympus}\n",
            3,
            "unknown time zone",
        ),
    ],
)
def test_each_fault_is_one_message_with_file_and_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    err = error_of(write(tmp_path, text))
    assert err.line == line, str(err)
    assert needle in str(err)
    assert str(err).startswith(str(tmp_path / "maintcheck.yaml"))


def test_a_password_written_in_a_dsn_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\ndatabases:\n  primary: {dsn: 'postgresql://u:hunter22@db/x'}\n"
    )
    err = error_of(path)
    assert "PGPASSWORD" in str(err)
    assert "hunter22" not in str(err)


def test_a_password_in_a_dsn_folded_over_lines_is_refused_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\ndatabases:\n  primary:\n    dsn: >-\n      postgresql://u:hunter22@db\n"
        "      /clinical\n",
    )
    err = error_of(path)
    assert "PGPASSWORD" in str(err)
    assert "hunter22" not in str(err)


def test_an_interpolated_dsn_password_becomes_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\ndatabases:\n  primary: {dsn: 'postgresql://u:${DB_PW}@db/x'}\n"
    )
    config = load_config(path, environ={"DB_PW": "s3cret-pw"})
    assert "s3cret-pw" in config.secrets
    assert "s3cret-pw" not in config.databases["primary"].safe_dsn


@pytest.mark.parametrize(
    "dsn",
    [
        "host=db user=u sslpassword=hunter22 sslkey=/k",
        "postgresql://u@db/x?sslmode=require&sslpassword=hunter22",
        "host=db oauth_client_secret=hunter22",
        "host=db password = 'hunter22'",
    ],
)
def test_a_libpq_secret_written_in_a_dsn_is_refused(tmp_path: Path, dsn: str) -> None:
    path = write(tmp_path, f'version: 1\ndatabases:\n  primary: {{dsn: "{dsn}"}}\n')
    err = error_of(path)
    assert "PGPASSWORD" in str(err)
    assert err.line == 3
    assert "hunter22" not in str(err)


def test_an_interpolated_sslpassword_is_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\ndatabases:\n  primary: {dsn: 'host=db sslpassword=${KEY_PW}'}\n"
    )
    config = load_config(path, environ={"KEY_PW": "k3y-pass"})
    assert "k3y-pass" in config.secrets
    assert "k3y-pass" not in config.databases["primary"].safe_dsn


def health_yaml(endpoint: str) -> str:
    entry = f"  - service: api\n    type: api\n    endpoint: '{endpoint}'\n"
    return "version: 1\nhealthChecks:\n" + entry


@pytest.mark.parametrize(
    ("endpoint", "named"),
    [
        ("https://svc:hunter22@api.internal/health", "user:password@"),
        ("https://api.internal/health?token=hunter22", "token="),
        ("https://api.internal/health?v=1&access_token=hunter22", "access_token="),
        ("https://api.internal/health?api_key=hunter22", "api_key="),
        ("https://api.internal/health?X-Amz-Signature=hunter22", "X-Amz-Signature="),
        ("https://api.internal/health?sig=hunter22", "sig="),
        ("https://api.internal/cb#id_token=hunter22", "id_token="),
    ],
)
def test_a_credential_written_in_a_health_url_is_refused(
    tmp_path: Path, endpoint: str, named: str
) -> None:
    err = error_of(write(tmp_path, health_yaml(endpoint)))
    assert err.line == 5
    assert named in str(err)
    assert "${VAR}" in str(err)
    assert "hunter22" not in str(err)


def test_credentials_from_the_environment_in_a_url_are_secrets(tmp_path: Path) -> None:
    # neither name looks secret: the URL field they fill makes them so
    endpoint = "https://svc:${SVC_PW}@api.internal/health?token=${Q}&region=${REGION}&ms=100"
    config = load_config(
        write(tmp_path, health_yaml(endpoint)),
        environ={"SVC_PW": "pw-77x1", "Q": "tok-5512", "REGION": "eu-west-1"},
    )
    assert {"pw-77x1", "tok-5512", "eu-west-1"} <= config.secrets
    assert config.health_checks[0].endpoint.endswith("token=tok-5512&region=eu-west-1&ms=100")
    assert "api" in config.public_names


def test_a_faulty_url_is_quoted_without_its_credentials(tmp_path: Path) -> None:
    endpoint = "https://svc:${SVC_PW}@api.internal:99999/health?token=${Q}"
    err = error_of(write(tmp_path, health_yaml(endpoint)), {"SVC_PW": "pw-77x1", "Q": "tok-5512"})
    assert "not 1-65535" in str(err)
    assert "pw-77x1" not in str(err)
    assert "tok-5512" not in str(err)


def test_relative_files_resolve_beside_the_config(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\npolicies:\n  - {name: p, file: policies/p.md, reviewEvery: 365d}\n"
    )
    assert load_config(path, environ={}).policies[0].file == tmp_path / "policies" / "p.md"


def test_the_shipped_schema_accepts_the_example_and_is_used_for_validation() -> None:
    import yaml

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["waivers"][0]["expires"] = str(raw["waivers"][0]["expires"])
    for window in raw["maintenanceWindows"]:  # YAML timestamps: the loader keeps them as text
        window.update({k: str(window[k]) for k in ("start", "end") if k in window})
    jsonschema.Draft202012Validator(schema()).validate(raw)
    shipped = Path(__import__("pytest_maintcheck").__file__).parent / "schema.json"
    assert json.loads(shipped.read_text()) == schema()
    sections = set(schema()["properties"])
    assert {
        "healthChecks",
        "databaseMaintenance",
        "backups",
        "certificates",
        "accessReview",
        "securityMonitoring",
        "dependencies",
        "policies",
        "capacity",
        "waivers",
    } <= sections


def test_units() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("15m") == 900
    assert parse_duration("7d") == 7 * 86400
    assert parse_size("512MB") == 512e6
    assert parse_size("2GiB") == 2 * 1024**3
    with pytest.raises(ValueError, match="duration"):
        parse_duration("7 days")


def test_thresholds_turn_round_for_lower_is_worse_metrics() -> None:
    cache = Threshold.parse("cacheHitRatio", {"warn": 0.95, "fail": 0.90})
    assert cache.judge(0.99) is Verdict.PASS
    assert cache.judge(0.93) is Verdict.DEGRADED
    assert cache.judge(0.80) is Verdict.VIOLATION
    latency = Threshold.parse("responseTime", {"warn": 300, "fail": 800})
    assert latency.judge(200) is Verdict.PASS
    assert latency.judge(500) is Verdict.DEGRADED
    assert latency.judge(900) is Verdict.VIOLATION
    assert Threshold.parse("errorRate", 0.05).judge(0.06) is Verdict.VIOLATION
    with pytest.raises(ThresholdError):
        Threshold.parse("responseTime", {"warn": 900, "fail": 300})


def test_size_change_defaults_to_warn_a_fifth_and_fail_a_half(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nsystem: s\nbackups:\n"
        "  - {name: nightly, kind: pg_dump, location: /var/backups, pattern: '*.dump'}\n",
    )
    limit = load_config(path, environ={}).backups[0].size_change
    assert limit == Threshold("sizeChange", 0.2, 0.5)
    assert limit.judge(0.1) is Verdict.PASS
    assert limit.judge(0.2) is Verdict.DEGRADED
    assert limit.judge(0.5) is Verdict.VIOLATION  # a backup that halved
    assert limit.describe() == "warn >= 20%, fail >= 50%"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "- {name: svc-etl, owner: alice, justification: import}\n"
            "    - {name: SVC-ETL, owner: bob, justification: again}\n",
            "maintcheck.yaml:5: accessReview.serviceAccounts[1].name: 'SVC-ETL' is declared twice",
        ),
        (
            "- {name: svc-etl, justification: import}\n",
            "maintcheck.yaml:4: accessReview.serviceAccounts[0]: 'owner' is required",
        ),
    ],
)
def test_service_accounts_name_an_owner_and_are_declared_once(
    tmp_path: Path, entries: str, message: str
) -> None:
    path = write(tmp_path, "version: 1\naccessReview:\n  serviceAccounts:\n    " + entries)
    assert str(error_of(path)).endswith("/" + message)


def test_the_example_a_newcomer_copies_validates(tmp_path: Path) -> None:
    """README: cp examples/maintcheck.yaml maintcheck.yaml; maintcheck validate -> exit 0 (its
    waiver names a certificate the example configures, as validate requires)."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copy(EXAMPLE, tmp_path / "maintcheck.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_maintcheck.cli", "validate"],
        cwd=tmp_path,
        env={**os.environ, **example_environ()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout
