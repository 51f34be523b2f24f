"""The certificate review against real TLS servers on 127.0.0.1 and real PEM files.

One pytester run checks every case, each an entry of one config; each case asserts the finding
it exists for, so removing a rule fails its case.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from check_runs import CHECKS, newest_run, read_record
from pytest_maintcheck.probes.certificates import (
    CertificateProbeError,
    examine_endpoint,
    name_matches,
)
from pytest_maintcheck.sandbox import (
    CertAuthority,
    IssuedCert,
    SandboxApi,
    free_port,
    make_ca,
    sha1_signing_supported,
)
from pytest_maintcheck.sandbox.tls import self_signed

# serving TLS 1.1 on purpose, to show the review catches it
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


def serve(stack: ExitStack, cert: Path, key: Path, max_tls: ssl.TLSVersion | None = None) -> int:
    """An HTTPS SandboxApi with this certificate; security level 0 so weak ones still load."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if max_tls is not None:
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = max_tls
    context.load_cert_chain(str(cert), str(key))
    return stack.enter_context(SandboxApi(ssl_context=context)).port


def openssl_signed(ca: CertAuthority, directory: Path, digest: str) -> tuple[Path, Path]:
    """A 127.0.0.1 leaf signed by ca with digest, made by the openssl CLI.

    cryptography refuses to sign with SHA-1 here (sha1_signing_supported() is False) and never
    with MD5; the openssl command line still does, so the test gets a real SHA-1/MD5 cert.
    """
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    ca_key.write_bytes(
        ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_pem = ca.write_ca(directory)
    key, csr, cert = directory / "leaf.key", directory / "leaf.csr", directory / "leaf.crt"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    request = ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"]
    sign = ["x509", "-req", "-CAcreateserial", "-days", "60", f"-{digest}"]
    ca_args = ["-CA", str(ca_pem), "-CAkey", str(ca_key), "-extfile", str(ext)]
    commands = [
        ["openssl", *request, "-keyout", str(key), "-out", str(csr)],
        ["openssl", *sign, *ca_args, "-in", str(csr), "-out", str(cert)],
    ]
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            pytest.skip(f"openssl refuses to sign with {digest}: {done.stderr.strip()[-200:]}")
    return cert, key


def openssl(*argv: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    return subprocess.run(
        ["openssl", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def ca_without_key_usage(directory: Path) -> tuple[Path, Path, Path]:
    """A CA made the way `openssl req -x509 -new` makes one (basicConstraints, no keyUsage) and a
    127.0.0.1 leaf it signed; (CA file, leaf, leaf key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    key, csr, leaf = directory / "leaf.key", directory / "leaf.csr", directory / "leaf.crt"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    signing = ["-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(ext)]
    make_ca_args = ["-subj", "/CN=openssl default CA", "-days", "3650", "-keyout", str(ca_key)]
    steps = [
        ["req", "-x509", "-new", *ec, *make_ca_args, "-out", str(ca)],
        ["req", "-new", *ec, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), *signing, "-days", "60", "-out", str(leaf)],
    ]
    for argv in steps:
        done = openssl(*argv)
        assert done.returncode == 0, done.stderr
    text = openssl("x509", "-in", str(ca), "-noout", "-text").stdout
    assert "CA:TRUE" in text  # what the case is about: a CA ...
    assert "Key Usage" not in text  # ... without keyUsage
    return ca, leaf, key


def tls11_supported() -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ssl.SSLError, ValueError):
        return False
    return ssl.HAS_TLSv1_1


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Servers and files for every case, one monthly run over them; results by target name."""
    d = tmp_path_factory.mktemp("certs")
    ca, stranger = make_ca(), make_ca("untrusted CA")
    rsa_ca = make_ca("rsa CA", key_type="rsa")
    ca_file, rsa_ca_file = ca.write_ca(d), rsa_ca.write_ca(d / "rsa")
    short_ca = make_ca("short-lived CA", days_valid=5)
    short_ca_file = short_ca.write_ca(d / "short")
    entries: list[dict[str, Any]] = []
    with ExitStack() as stack:

        def endpoint(name: str, issued: IssuedCert, **extra: Any) -> None:
            cert, key = issued.write(d, name)
            port = serve(stack, cert, key, extra.pop("max_tls", None))
            entries.append({"name": name, "host": f"127.0.0.1:{port}", **extra})

        here = ["127.0.0.1", "localhost"]
        now = dt.datetime.now(dt.UTC)  # every case is relative to it: no date is assumed
        endpoint("good", ca.issue(here), caFile=str(ca_file))
        endpoint("by-name", ca.issue(["localhost"]), serverName="localhost", caFile=str(ca_file))
        endpoint("expired", ca.issue(here, expired=True), caFile=str(ca_file))
        ago70 = now - dt.timedelta(days=70)  # a 90-day certificate with 20 days left
        endpoint("expiring", ca.issue(here, not_before=ago70), caFile=str(ca_file))
        endpoint("day-cert-fresh", ca.issue(here, days_valid=1), caFile=str(ca_file))
        day_cert_late = ca.issue(here, not_before=now - dt.timedelta(hours=19), days_valid=1)
        endpoint("day-cert-late", day_cert_late, caFile=str(ca_file))  # 5 of 24 hours left
        endpoint(
            "day-cert-fixed",
            ca.issue(here, days_valid=1),
            caFile=str(ca_file),
            thresholds={"lifetimeLeft": None},
        )
        soon = now + dt.timedelta(days=3)
        endpoint("not-yet-valid", ca.issue(here, not_before=soon), caFile=str(ca_file))
        endpoint("weak-key", ca.issue(here, key_type="rsa", key_bits=1024), caFile=str(ca_file))
        endpoint("wrong-host", ca.issue(["records.example.org"]), caFile=str(ca_file))
        endpoint("untrusted", stranger.issue(here), caFile=str(ca_file))
        endpoint("long-lived", ca.issue(here, days_valid=800), caFile=str(ca_file))
        endpoint(
            "long-lived-public", ca.issue(here, days_valid=800), caFile=str(ca_file), publicCa=True
        )
        endpoint(
            "long-lived-capped",
            ca.issue(here, days_valid=800),
            caFile=str(ca_file),
            thresholds={"validityDays": {"warn": 398}},
        )
        endpoint("self-signed", self_signed(here))
        root = make_ca("chain root CA", path_length=1)
        root_file = root.write_ca(d / "root")
        intermediate = root.issue_intermediate("chain intermediate CA")
        endpoint("no-intermediate", intermediate.issue(here), caFile=str(root_file))
        full_cert, full_key = intermediate.issue(here).write(d, "full-chain")
        full_cert.write_bytes(full_cert.read_bytes() + intermediate.ca_cert_pem)
        port = serve(stack, full_cert, full_key)
        entries.append(
            {"name": "full-chain", "host": f"127.0.0.1:{port}", "caFile": str(root_file)}
        )
        bare_ca, bare_leaf, bare_key = ca_without_key_usage(d / "bare")
        port = serve(stack, bare_leaf, bare_key)
        entries.append({"name": "no-keyusage", "host": f"127.0.0.1:{port}", "caFile": str(bare_ca)})
        plain = stack.enter_context(SandboxApi())  # plain HTTP
        entries.append({"name": "plain-http", "host": f"127.0.0.1:{plain.port}"})
        endpoint("short-ca", short_ca.issue(here), caFile=str(short_ca_file))
        endpoint("system-store", ca.issue(here))  # our CA is not in the system bundle
        if tls11_supported():
            endpoint("tls11", ca.issue(here), caFile=str(ca_file), max_tls=ssl.TLSVersion.TLSv1_1)
        sha1_cert, sha1_key = openssl_signed(rsa_ca, d / "sha1", "sha1")
        port = serve(stack, sha1_cert, sha1_key)
        entries.append({"name": "sha1", "host": f"127.0.0.1:{port}", "caFile": str(rsa_ca_file)})
        md5_cert, _ = openssl_signed(rsa_ca, d / "md5", "md5")
        entries.append({"name": "md5-file", "file": str(md5_cert), "caFile": str(rsa_ca_file)})
        leaf, _ = ca.issue(here).write(d / "file", "leaf")
        entries.append({"name": "leaf-file", "file": str(leaf), "caFile": str(ca_file)})
        entries.append({"name": "ca-bundle", "file": str(ca_file)})
        entries.append({"name": "closed-port", "host": f"127.0.0.1:{free_port()}", "timeout": "3s"})

        run = d / "run"
        run.mkdir()
        config = run / "maintcheck.yaml"
        config.write_text(yaml.safe_dump({"version": 1, "certificates": entries}))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"{CHECKS / 'test_monthly_security.py'}::test_certificate",
                "--maintcheck-config",
                str(config),
                "--maintcheck-report-dir",
                str(run / "reports"),
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(run),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=run,
        )
        newest = newest_run(run / "reports", done.stdout + done.stderr)
        results = read_record(newest, "results.json")
        yield {c["target"]: c for c in results["checks"]}


def descriptions(result: dict[str, Any]) -> str:
    return "\n".join(f["description"] for f in result["findings"])


def test_a_good_certificate_passes_with_its_facts_recorded(review: dict[str, Any]) -> None:
    good = review["good"]
    assert good["verdict"] == "pass", descriptions(good)
    assert 89 <= good["metrics"]["daysToExpiry"] <= 90
    assert good["details"]["tlsVersion"] in ("TLSv1.2", "TLSv1.3")
    assert good["details"]["verifiedChain"][-1] == "CN=maintcheck sandbox CA"
    assert review["by-name"]["verdict"] == "pass", descriptions(review["by-name"])


def test_an_expired_certificate_is_a_violation_reported_once(review: dict[str, Any]) -> None:
    expired = review["expired"]
    assert expired["verdict"] == "violation"
    assert expired["metrics"]["daysToExpiry"] < 0
    assert len(expired["findings"]) == 1, descriptions(expired)  # not also "does not verify"
    assert "days to expiry" in expired["findings"][0]["description"]
    assert "Renew" in expired["findings"][0]["action"]


def test_a_certificate_inside_the_warning_window_is_a_warning(review: dict[str, Any]) -> None:
    expiring = review["expiring"]
    assert expiring["verdict"] == "degraded"
    [finding] = expiring["findings"]
    assert "lifetime 90 days" in finding["description"]
    assert finding["description"].endswith("days to expiry 20 days (warn < 30 days, fail < 7 days)")
    assert expiring["metrics"]["lifetimeLeft"] == pytest.approx(0.222, abs=0.002)


def test_a_short_lived_certificate_is_judged_against_its_own_lifetime(
    review: dict[str, Any],
) -> None:
    fresh = review["day-cert-fresh"]  # 24 hours, just issued: under 7 days, yet not expiring
    assert fresh["verdict"] == "pass", descriptions(fresh)
    late = review["day-cert-late"]  # 5 of its 24 hours left: less than a third
    assert late["verdict"] == "degraded", descriptions(late)
    assert "days to expiry 5.0 hours (warn < 8.0 hours, fail < 2.4 hours)" in descriptions(late)
    fixed = review["day-cert-fixed"]  # lifetimeLeft: null keeps the fixed 30/7 days
    assert fixed["verdict"] == "violation"
    assert "(warn < 30 days, fail < 7 days)" in descriptions(fixed)


def test_a_certificate_not_yet_valid_is_a_violation(review: dict[str, Any]) -> None:
    early = review["not-yet-valid"]
    assert early["verdict"] == "violation"
    [finding] = early["findings"]
    assert "CN=127.0.0.1 is not valid until" in finding["description"]
    assert "(3 days from now); clients refuse it until then" in finding["description"]


def test_the_earliest_expiry_in_the_chain_counts(review: dict[str, Any]) -> None:
    short = review["short-ca"]  # the leaf has 90 days, its CA 5
    assert short["verdict"] == "violation"
    assert short["metrics"]["daysToExpiry"] <= 5
    assert "CN=short-lived CA" in descriptions(short)


def test_a_weak_rsa_key_is_a_violation(review: dict[str, Any]) -> None:
    weak = review["weak-key"]
    assert weak["verdict"] == "violation"
    assert weak["metrics"]["minKeyBits"] == 1024
    assert "key size 1024 bits (fail < 2048 bits)" in descriptions(weak)


def test_a_host_name_missing_from_the_sans_is_a_violation(review: dict[str, Any]) -> None:
    wrong = review["wrong-host"]
    assert wrong["verdict"] == "violation"
    assert "127.0.0.1 is not among the certificate's names (records.example.org)" in descriptions(
        wrong
    )


def test_a_chain_from_an_untrusted_ca_is_a_violation(review: dict[str, Any]) -> None:
    for name in ("untrusted", "system-store"):
        result = review[name]
        assert result["verdict"] == "violation"
        assert "chain does not verify: the server does not send its intermediate" in descriptions(
            result
        )
        assert "CN=untrusted CA" in descriptions(review["untrusted"])
    assert "or caFile is not the CA that issued it" in descriptions(review["untrusted"])
    assert "nor in the system trust store; or it comes from a private CA (then set caFile)" in (
        descriptions(review["system-store"])
    )


def test_chain_errors_are_plain_words(review: dict[str, Any]) -> None:
    """Each chain error says what is wrong; the path builder's message stays in the record."""
    self_signed_leaf = review["self-signed"]
    assert self_signed_leaf["verdict"] == "violation"
    assert "self-signed; set caFile" in descriptions(self_signed_leaf)
    missing = review["no-intermediate"]
    assert missing["verdict"] == "violation"
    assert (
        "the server does not send its intermediate: CN=chain intermediate CA, which issued "
        "CN=127.0.0.1, is neither sent by the server nor in caFile"
    ) in descriptions(missing)
    assert "Serve the full chain" in missing["findings"][0]["action"]
    full = review["full-chain"]
    assert full["verdict"] == "pass", descriptions(full)
    assert full["details"]["verifiedChain"][1:] == ["CN=chain intermediate CA", "CN=chain root CA"]
    plain = review["plain-http"]
    assert plain["verdict"] == "violation"
    assert "this port does not speak TLS" in descriptions(plain)
    assert "WRONG_VERSION_NUMBER" not in descriptions(plain)
    for result in review.values():
        for finding in result["findings"]:
            for internal in ("candidates exhausted", "validation failed", "_ssl.c", "[SSL:"):
                assert internal not in finding["description"], finding
    assert "candidates exhausted" in missing["details"]["verifyDetail"]


def test_a_ca_without_key_usage_is_a_warning_with_the_real_fix(review: dict[str, Any]) -> None:
    bare = review["no-keyusage"]
    assert bare["verdict"] == "degraded", descriptions(bare)
    [finding] = bare["findings"]
    assert finding["description"] == (
        "no-keyusage: the CA lacks keyUsage: CN=openssl default CA has no keyUsage extension "
        "(what `openssl req -x509 -new` makes by default). OpenSSL clients (curl, psql, Python "
        "up to 3.12, check_ssl_cert) accept this chain; Python 3.13+ and "
        "`openssl verify -x509_strict` reject it"
    )
    assert "keyUsage = critical, keyCertSign, cRLSign" in finding["action"]
    assert "full chain" not in finding["action"]
    assert bare["details"]["verifiedChain"] == ["CN=127.0.0.1", "CN=openssl default CA"]


def test_lifetime_limits_apply_to_public_cas_or_when_configured(review: dict[str, Any]) -> None:
    private = review["long-lived"]  # 800 days from a private CA (caFile): no public rule
    assert private["verdict"] == "pass", descriptions(private)
    assert private["details"]["caKind"] == "private"
    public = review["long-lived-public"]  # publicCa: true; over whichever limit is in force
    assert public["verdict"] == "degraded"
    assert public["details"]["caKind"] == "public"
    assert "certificate lifetime 800 days (warn >" in descriptions(public)
    assert "CA/Browser Forum ballot SC" in descriptions(public)
    capped = review["long-lived-capped"]  # validityDays set: applies to a private CA too
    assert capped["verdict"] == "degraded"
    assert "certificate lifetime 800 days (warn > 398 days)" in descriptions(capped)


def test_sha1_and_md5_signatures_are_violations(review: dict[str, Any]) -> None:
    assert not sha1_signing_supported()  # why the openssl CLI makes these certificates
    sha1 = review["sha1"]
    assert sha1["verdict"] == "violation"
    assert "is signed with SHA1" in descriptions(sha1)
    md5 = review["md5-file"]
    assert md5["verdict"] == "violation"
    assert "is signed with MD5" in descriptions(md5)


def test_tls_older_than_1_2_is_a_violation(review: dict[str, Any]) -> None:
    if "tls11" not in review:
        pytest.skip("this OpenSSL build cannot serve TLS 1.1")
    old = review["tls11"]
    assert old["details"]["tlsVersion"] == "TLSv1.1"
    assert "negotiated TLSv1.1; TLS 1.2 or newer is required" in descriptions(old)


def test_pem_files_leaf_and_ca_bundle(review: dict[str, Any]) -> None:
    assert review["leaf-file"]["verdict"] == "pass", descriptions(review["leaf-file"])
    bundle = review["ca-bundle"]  # a CA: no 398-day rule, no chain to verify
    assert bundle["verdict"] == "pass", descriptions(bundle)
    assert bundle["details"]["presented"][0]["ca"] is True


def test_an_unreachable_endpoint_is_a_violation_not_a_crash(review: dict[str, Any]) -> None:
    closed = review["closed-port"]
    assert closed["verdict"] == "violation"
    assert "TLS handshake with 127.0.0.1" in descriptions(closed)
    assert "connection refused: nothing listens on that port" in descriptions(closed)


def test_the_handshake_succeeds_even_when_verification_fails(tmp_path: Path) -> None:
    stranger = make_ca("untrusted CA")
    cert, key = stranger.issue(["elsewhere.example"], expired=True).write(tmp_path)
    with ExitStack() as stack:
        port = serve(stack, cert, key)
        report = examine_endpoint(
            "127.0.0.1", port, ca_file=make_ca().write_ca(tmp_path / "ca"), timeout=5
        )
    assert report.leaf.subject == "CN=elsewhere.example"
    assert report.verified is False
    assert report.verify_error
    assert report.name_matches is False


@pytest.mark.parametrize(
    ("name", "sans", "matches"),
    [
        ("api.example.org", ("api.example.org",), True),
        ("API.Example.org.", ("api.example.org",), True),
        ("api.example.org", ("*.example.org",), True),
        ("a.b.example.org", ("*.example.org",), False),  # a wildcard covers one label
        ("example.org", ("*.example.org",), False),
        ("127.0.0.1", ("127.0.0.1",), True),
        ("127.0.0.1", ("localhost",), False),
        ("::1", ("0:0:0:0:0:0:0:1",), True),
    ],
)
def test_name_matching(name: str, sans: tuple[str, ...], matches: bool) -> None:
    assert name_matches(name, sans) is matches


def test_what_the_key_usage_warning_says_about_clients_holds(tmp_path: Path) -> None:
    """OpenSSL's default verification (Python 3.11 here, like curl and psql) accepts a chain whose
    CA has no keyUsage; strict verification (Python 3.13's default flag, openssl -x509_strict)
    does not. The warning says exactly that, so this checks it against the real libraries."""
    ca, leaf, key = ca_without_key_usage(tmp_path)
    assert openssl("verify", "-CAfile", str(ca), str(leaf)).returncode == 0
    strict = openssl("verify", "-x509_strict", "-CAfile", str(ca), str(leaf))
    assert strict.returncode != 0
    assert "key usage" in strict.stdout + strict.stderr
    with ExitStack() as stack:
        port = serve(stack, leaf, key)
        lenient = ssl.create_default_context(cafile=str(ca))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            lenient.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version()
        python313 = ssl.create_default_context(cafile=str(ca))
        python313.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13 sets it by default
        with (
            pytest.raises(ssl.SSLCertVerificationError, match="key usage"),
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ):
            python313.wrap_socket(raw, server_hostname="127.0.0.1")
        report = examine_endpoint("127.0.0.1", port, ca_file=ca, timeout=5)
    assert report.verified is True
    assert report.problem is not None
    assert report.problem.blocking is False


def test_a_port_that_closes_the_handshake_says_so(tmp_path: Path) -> None:
    """A service that hangs up on a TLS ClientHello (as PostgreSQL does on an unknown startup)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def hang_up() -> None:
            conn, _ = server.accept()
            conn.recv(1024)
            conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        with pytest.raises(CertificateProbeError) as caught:
            examine_endpoint("127.0.0.1", port, timeout=5)
        thread.join(timeout=5)
    assert "closed the connection during the TLS handshake" in str(caught.value)
    assert caught.value.action is not None


def test_a_port_that_never_answers_times_out_in_plain_words() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,  # listens, never accepts or answers
        pytest.raises(CertificateProbeError, match=r"no answer within 1 s"),
    ):
        examine_endpoint("127.0.0.1", server.getsockname()[1], timeout=1)
