"""A tamper-evident chain of MaintenanceLogs (HIPAA 164.312(b) audit controls, 164.312(c)(1)
integrity).

What is hashed, once, here:

- ``manifest``: the SHA-256 of every other file of the run folder (records, report.html), so
  editing any record of a run changes a hash its log holds.
- ``previousHash``: the SHA-256 of the previous run's ``maintenance-log.json`` file bytes, of
  the same system and environment; ``previousRun`` names that run and ``sequence`` counts the
  chain (1 for its first run). A run of another system is skipped: it has its own chain.
- ``signature`` (with a key configured): Ed25519 over the log's canonical JSON (sorted keys,
  no spaces, UTF-8) without the signature itself.

``verify`` walks each chain in sequence order and names the first run whose records were
altered, removed or reordered. Plain Python: no pytest, no server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pytest_maintcheck.config import Config, ConfigError

LOG = "maintenance-log.json"
CHAIN_FIELDS = ("sequence", "previousRun", "previousHash", "manifest")


class SigningKeyError(Exception):
    """A signing or public key that cannot be used; the message says why and what to do."""


# ---------------------------------------------------------------------------- hashing


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a run folder but its log, by path relative to the folder."""
    out = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name != LOG:
            out[name] = sha256_file(path)
    return out


def canonical(log: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the log without its signature, as canonical JSON."""
    body = {k: v for k, v in log.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------- keys


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the start of the SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + sha256_bytes(raw)[:16]


@dataclass(frozen=True)
class Signer:
    """An Ed25519 key that signs each run's log; ``source`` says where it came from."""

    key: Ed25519PrivateKey
    source: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def sign(self, log: Mapping[str, Any]) -> dict[str, str]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "algorithm": "Ed25519",
            "keyId": key_id(self.public),
            "publicKey": base64.b64encode(raw).decode(),
            "value": base64.b64encode(self.key.sign(canonical(log))).decode(),
        }


def signer_from_file(path: Path) -> Signer:
    """A PEM Ed25519 private key from a file only its owner can read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read the signing key {path}: {exc.strerror or exc}"
        ) from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise SigningKeyError(
            f"the signing key {path} can be read or written by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read the signing key {path}: {exc.strerror or exc}"
        ) from None
    return Signer(_private_key(data, str(path)), f"file {path}")


def signer_from_env(name: str, environ: Mapping[str, str] | None = None) -> Signer:
    """A PEM Ed25519 private key from an environment variable."""
    env = os.environ if environ is None else environ
    text = env.get(name)
    if not text:
        raise SigningKeyError(f"the signing key variable {name} is not set in the environment")
    return Signer(_private_key(text.encode(), f"${name}"), f"environment variable {name}")


def _private_key(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(
            f"{where}: not an unencrypted PEM private key; make one with: "
            "openssl genpkey -algorithm ed25519 -out maintcheck-signing.pem"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: a {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_from_file(path: Path) -> Ed25519PublicKey:
    """A trusted PEM public key (``openssl pkey -in key.pem -pubout``)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise SigningKeyError(f"cannot read the public key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: a {type(key).__name__}, not an Ed25519 key")
    return key


# ---------------------------------------------------------------------------- sealing


@dataclass(frozen=True)
class Link:
    """A chained run: where it is, what its log says, and the log file's hash."""

    folder: Path
    log: dict[str, Any]
    digest: str

    @property
    def sequence(self) -> int:
        value = self.log.get("sequence")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0


def chain_key(log: Mapping[str, Any]) -> tuple[str, str]:
    return str(log.get("system", "")), str(log.get("environment", ""))


def read_link(folder: Path) -> Link | None:
    """A run folder's log with its hash; None when absent or not a JSON object."""
    try:
        data = (folder / LOG).read_bytes()
        log = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    return Link(folder, log, sha256_bytes(data)) if isinstance(log, dict) else None


def chain_head(report_dir: Path, system: str, environment: str) -> Link | None:
    """The last run of this system's chain: its highest sequence (not the newest folder:
    runs started earlier may finish later)."""
    from pytest_maintcheck.report.files import run_folders

    head: Link | None = None
    for folder in run_folders(report_dir):
        link = read_link(folder)
        if link is None or chain_key(link.log) != (system, environment):
            continue
        if "sequence" in link.log and (head is None or link.sequence > head.sequence):
            head = link
    return head


def seal(
    log: Mapping[str, Any], staging: Path, report_dir: Path, signer: Signer | None
) -> dict[str, Any]:
    """The log with its manifest, its link to the previous run, and its signature.

    Call it with every other file of the run already in ``staging``, and hold the report
    folder's lock until the run folder is in place, so two runs never claim one position.
    """
    system, environment = chain_key(log)
    head = chain_head(report_dir, system, environment)
    sealed = dict(log)
    sealed.pop("signature", None)
    sealed["sequence"] = head.sequence + 1 if head else 1
    sealed["previousRun"] = head.folder.name if head else None
    sealed["previousHash"] = head.digest if head else None
    sealed["manifest"] = manifest(staging)
    if signer is not None:
        sealed["signature"] = signer.sign(sealed)
    return sealed


# ---------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Problem:
    """A break in a chain; ``position`` orders problems so the first broken run comes first."""

    run: str
    position: int
    what: str


@dataclass
class ChainReport:
    """One system's chain as verify found it."""

    system: str
    environment: str
    runs: list[Link] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    signers: dict[str, int] = field(default_factory=dict)  # keyId -> runs signed
    before_chain: int = 0  # runs written before chaining existed (no sequence)

    @property
    def name(self) -> str:
        return f"{self.system or '(no system)'} / {self.environment or '(no environment)'}"

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.position, default=None)


def verify(
    report_dir: Path, trusted: Mapping[str, str] | None = None, since: str | None = None
) -> tuple[list[ChainReport], list[str]]:
    """Every chain of the report folder checked; and runs whose log cannot be read at all.

    ``trusted`` maps key ids to where the key came from; when it is given, a signature by any
    other key is a problem. ``since`` starts every chain at that run (older runs pruned).
    """
    from pytest_maintcheck.report.files import run_folders

    chains: dict[tuple[str, str], ChainReport] = {}
    unreadable: list[str] = []
    legacy: list[Link] = []
    for folder in run_folders(report_dir):
        if since is not None and folder.name < since:
            continue
        link = read_link(folder)
        if link is None:
            state = "missing" if not (folder / LOG).exists() else "not a JSON object"
            unreadable.append(f"run {folder.name}: {LOG} {state} (removed or altered)")
            continue
        chain = chains.setdefault(chain_key(link.log), ChainReport(*chain_key(link.log)))
        if "sequence" in link.log:
            chain.runs.append(link)
        else:
            legacy.append(link)
    for link in legacy:  # before the chain began, or a log stripped of its chain fields
        chain = chains[chain_key(link.log)]
        first = min((r.folder.name for r in chain.runs), default=None)
        if first is not None and link.folder.name > first:
            chain.problems.append(
                Problem(
                    link.folder.name,
                    _position_after(chain.runs, link.folder.name),
                    f"run {link.folder.name}: its log has no chain fields "
                    f"({', '.join(CHAIN_FIELDS)}), though earlier runs are chained (altered)",
                )
            )
        else:
            chain.before_chain += 1
    for chain in chains.values():
        _walk(chain, trusted, since)
    return sorted(chains.values(), key=lambda c: (c.system, c.environment)), unreadable


def _position_after(runs: Iterable[Link], name: str) -> int:
    earlier = [r.sequence for r in runs if r.folder.name < name]
    return max(earlier, default=0) + 1


def _walk(chain: ChainReport, trusted: Mapping[str, str] | None, since: str | None) -> None:
    chain.runs.sort(key=lambda r: (r.sequence, r.folder.name))
    previous: Link | None = None
    signed_before = False
    for link in chain.runs:
        add = _adder(chain, link)
        _check_own(link, add)
        signed = _check_signature(link, trusted, chain, add)
        if signed_before and not signed:
            add("is not signed, though the run before it was (signature removed?)")
        signed_before = signed_before or signed
        _check_link(link, previous, since, add)
        if (
            previous is not None
            and link.log.get("previousRun") == previous.folder.name
            and link.log.get("previousHash") != previous.digest
        ):
            chain.problems.append(
                Problem(
                    previous.folder.name,
                    previous.sequence,
                    f"run {previous.folder.name}: {LOG} altered (its hash no longer "
                    f"matches the one run {link.folder.name} recorded)",
                )
            )
        previous = link


def _adder(chain: ChainReport, link: Link) -> Any:
    """Record a problem of this run, or of the run it names (``run``, ``position``)."""

    def add(what: str, run: str | None = None, position: int | None = None) -> None:
        blamed = run or link.folder.name
        where = link.sequence if position is None else position
        chain.problems.append(Problem(blamed, where, f"run {blamed}: {what}"))

    return add


def _check_own(link: Link, add: Any) -> None:
    """The folder holds its own run, and every file matches the manifest."""
    task = link.log.get("taskId")
    if task != link.folder.name:
        add(f"holds the log of run {task} (runs moved or swapped)")
    listed = link.log.get("manifest")
    if not isinstance(listed, dict):
        add("its log has no manifest (altered)")
        return
    present = manifest(link.folder)
    for name in sorted(set(listed) | set(present)):
        if name not in present:
            add(f"{name} removed")
        elif name not in listed:
            add(f"{name} added after the run")
        elif present[name] != listed[name]:
            add(f"{name} altered (SHA-256 differs from the manifest)")


def _check_link(link: Link, previous: Link | None, since: str | None, add: Any) -> None:
    """Sequence numbers run on by one and each run names the run before it."""
    named = link.log.get("previousRun")
    if previous is None:
        if link.sequence != 1 and since is None:
            add(
                f"removed: the chain in this folder starts at run {link.folder.name} "
                f"(position {link.sequence}), whose previous run is not here (after pruning "
                f"old runs on purpose, verify with --since {link.folder.name})",
                run=str(named),
                position=link.sequence - 1,
            )
        return
    if link.sequence == previous.sequence:
        add(f"claims position {link.sequence}, as run {previous.folder.name} does (reordered)")
    elif link.sequence != previous.sequence + 1:
        missing = link.sequence - previous.sequence - 1
        add(
            f"removed: {missing} run(s) between run {previous.folder.name} and run "
            f"{link.folder.name} (positions {previous.sequence + 1}-{link.sequence - 1}) are "
            f"not in the folder",
            run=str(named),
            position=link.sequence - 1,
        )
    elif named != previous.folder.name:
        add(f"names {named} as its previous run, but run {previous.folder.name} is (reordered)")


def _check_signature(
    link: Link, trusted: Mapping[str, str] | None, chain: ChainReport, add: Any
) -> bool:
    """True when the log is signed (whether or not the signature holds)."""
    sig = link.log.get("signature")
    if sig is None:
        return False
    if not isinstance(sig, dict):
        add("its signature is not a signature object (altered)")
        return True
    try:
        raw = base64.b64decode(str(sig.get("publicKey", "")), validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
        public.verify(
            base64.b64decode(str(sig.get("value", "")), validate=True), canonical(link.log)
        )
    except (ValueError, InvalidSignature):
        add("its signature does not match its log (altered)")
        return True
    kid = key_id(public)
    if sig.get("keyId") != kid:
        add(f"its signature names key {sig.get('keyId')} but was made by {kid} (altered)")
    elif trusted is not None and kid not in trusted:
        add(f"signed by key {kid}, which is not a trusted key ({', '.join(trusted) or 'none'})")
    chain.signers[kid] = chain.signers.get(kid, 0) + 1
    return True


def load_signer(config: Config) -> Signer | None:
    """The configured signing key, checked before any check runs; a ConfigError when unusable."""
    signing = config.signing
    if signing is None:
        return None
    try:
        if signing.key_file is not None:
            return signer_from_file(signing.key_file)
        return signer_from_env(str(signing.key_env))
    except SigningKeyError as exc:
        key = "keyFile" if signing.key_file is not None else "keyEnv"
        raise ConfigError(config.path, signing.line, ("signing", key), str(exc)) from None
