"""The config's JSON Schema documents every key, for editors and for the README's reference.

Issue 15 point 6: keys added beyond the SPEC (owners, connectTimeout, statementTimeout,
repairTimeout, lockTimeout, restoreTest.jobs, severity) are part of the contract, so each key
carries a description an editor shows, and the README's reference is generated from the schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from example_config import EXAMPLE, example_environ
from pytest_maintcheck.config import load_config, schema

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCRIPT = ROOT / "scripts" / "schema-to-markdown.py"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"

# keywords a draft-07 editor (yaml-language-server, JetBrains) understands; $defs is only ever
# reached through a "#/$defs/..." pointer, which any draft resolves as a plain JSON pointer
DRAFT7_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$comment", "$defs", "title", "description", "default",
        "examples", "readOnly", "writeOnly", "multipleOf", "maximum", "exclusiveMaximum",
        "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "items",
        "additionalItems", "maxItems", "minItems", "uniqueItems", "contains", "maxProperties",
        "minProperties", "required", "properties", "patternProperties", "additionalProperties",
        "dependencies", "propertyNames", "const", "enum", "type", "format", "allOf", "anyOf",
        "oneOf", "not", "if", "then", "else",
    }
)  # fmt: skip


def undocumented(tree: Mapping[str, Any]) -> list[str]:
    """The path of every property without a description, following $ref, items, maps and anyOf;
    a property of a $defs entry met on several paths is named once, by the first."""
    missing: list[str] = []
    seen: set[int] = set()

    def walk(node: Mapping[str, Any], path: str, refs: frozenset[str]) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in refs:  # a ref already on the path is a cycle
            walk(tree["$defs"][ref.removeprefix("#/$defs/")], path, refs | {ref})
        for key, prop in node.get("properties", {}).items():
            where = f"{path}.{key}" if path else key
            if id(prop) not in seen:
                seen.add(id(prop))
                about = prop.get("description")
                if not isinstance(about, str) or not about.strip():
                    missing.append(where)
            walk(prop, where, refs)
        for inner, suffix in (
            (node.get("additionalProperties"), ".<name>"),
            (node.get("items"), "[]"),
        ):
            if isinstance(inner, Mapping):
                walk(inner, path + suffix, refs)
        for option in node.get("anyOf", ()):
            walk(option, path, refs)

    walk(tree, "", frozenset())
    for name, definition in tree.get("$defs", {}).items():  # entries nothing refers to yet
        walk(definition, f"$defs.{name}", frozenset({f"#/$defs/{name}"}))
    return missing


def test_every_key_in_the_schema_has_a_description() -> None:
    missing = undocumented(schema())
    assert not missing, (
        "keys without a description (editors show no help for them; write what it is, its "
        "unit, its default and which way is worse): " + ", ".join(missing)
    )


def test_the_walk_names_each_key_without_a_description() -> None:
    tree = {
        "properties": {
            "documented": {"description": "x", "$ref": "#/$defs/thing"},
            "bare": {"type": "string"},
            "list": {"description": "x", "items": {"properties": {"inner": {"type": "integer"}}}},
            "map": {"description": "x", "additionalProperties": {"$ref": "#/$defs/thing"}},
            "either": {"description": "x", "anyOf": [{"properties": {"opt": {}}}]},
        },
        "$defs": {
            "thing": {
                "properties": {
                    "deep": {"type": "string"},
                    "loop": {"description": "x", "$ref": "#/$defs/thing"},
                }
            },
            "unused": {"properties": {"orphan": {"description": "  "}}},
        },
    }
    assert undocumented(tree) == [
        "documented.deep",
        "bare",
        "list[].inner",
        "either.opt",
        "$defs.unused.orphan",
    ]


class _Reads(dict[str, Any]):
    """The config file's top-level mapping, remembering each section the loader asks for."""

    asked: set[str]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def _sections_read(monkeypatch: pytest.MonkeyPatch, path: Path, env: dict[str, str]) -> set[str]:
    # the reader is whatever load_config's own module calls _Reader (config.py or a package)
    reader = load_config.__globals__["_Reader"]
    plain_read = reader.read
    made: list[_Reads] = []

    def read(self: Any, text: str) -> Any:
        raw = _Reads(plain_read(self, text))
        raw.asked = set()
        made.append(raw)
        return raw

    monkeypatch.setattr(reader, "read", read)
    load_config(path, environ=env)
    return set().union(*(r.asked for r in made))


def test_the_loader_reads_exactly_the_sections_the_schema_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    minimal = tmp_path / "maintcheck.yaml"
    minimal.write_text("version: 1\n")
    read = _sections_read(monkeypatch, minimal, {}) | _sections_read(
        monkeypatch, EXAMPLE, example_environ()
    )
    accepted = set(schema()["properties"])
    assert read - accepted == set(), "read by the loader but refused by the schema"
    assert accepted - read == set(), "accepted by the schema but never read by the loader"


def _readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert (text.count(START), text.count(END)) == (1, 1), f"README.md needs one {START} block"
    return text.split(START, 1)[1].split(END, 1)[0].removeprefix("\n")


def test_the_readme_reference_is_what_the_script_prints_from_the_schema() -> None:
    printed = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert _readme_block() == printed, (
        "README.md's config reference differs from the schema: run "
        "`python scripts/schema-to-markdown.py --write`"
    )


@pytest.mark.parametrize(
    ("section", "row"),
    [
        ("owners", "`default`"),
        ("owners", "`security`"),
        ("databases", "`<name>.connectTimeout`"),
        ("databases", "`<name>.statementTimeout`"),
        ("databaseMaintenance", "`repairTimeout`"),
        ("databaseMaintenance", "`lockTimeout`"),
        ("backups", "`restoreTest.jobs`"),
        ("healthChecks", "`severity`"),
        ("backups", "`severity`"),
        ("certificates", "`severity`"),
    ],
)
def test_the_keys_added_beyond_the_spec_are_in_the_reference(section: str, row: str) -> None:
    block = _readme_block()
    assert f"### `{section}`" in block
    table = block.split(f"### `{section}`", 1)[1].split("\n### ", 1)[0]
    line = next((ln for ln in table.splitlines() if ln.startswith(f"| {row} ")), None)
    assert line is not None, f"{section}: no {row} row"
    described = line.split(" | ")[-1].strip(" |")
    assert len(described) > 20, f"{section} {row}: {described!r}"


def test_maintcheck_schema_prints_a_schema_editors_can_use(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest_maintcheck.cli", "schema"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed == schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed["$id"].startswith("https://")
    assert printed["$id"].endswith(".schema.json")
    assert "maintcheck.yaml" in printed["title"]
    assert printed["description"]
    jsonschema.Draft202012Validator.check_schema(printed)
    jsonschema.Draft7Validator.check_schema(printed)


def _keywords(node: Any) -> set[str]:
    """Every keyword used in a schema: not the names under properties and $defs, nor values."""
    if isinstance(node, list):
        return set().union(*(_keywords(n) for n in node))
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for key, value in node.items():
        if key in ("properties", "$defs"):
            found |= set().union(*(_keywords(v) for v in value.values()))
        elif key not in ("enum", "const", "default", "examples"):
            found |= _keywords(value)
    return found


def _example() -> Any:
    # YAML dates and times to text, as the loader reads them
    return json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), default=str))


def test_a_draft7_editor_judges_configs_as_the_loader_does() -> None:
    tree = schema()
    assert _keywords(tree) - DRAFT7_KEYWORDS == set()
    typo = {"version": 1, "healthChecks": [{"service": "api", "type": "api", "endpont": "x"}]}
    wrong = {"version": 1, "databaseMaintenance": [{"database": "p", "lockTimeout": "soon"}]}
    jobs = {"version": 1, "backups": [{"name": "b", "kind": "pg_dump", "location": "/b",
                                       "pattern": "*", "restoreTest": {"jobs": 0}}]}  # fmt: skip
    for config in (_example(), typo, wrong, jobs, {"version": 1, "owners": {"nobody": "x"}}):
        loader = sorted(
            e.json_path for e in jsonschema.Draft202012Validator(tree).iter_errors(config)
        )
        editor = sorted(e.json_path for e in jsonschema.Draft7Validator(tree).iter_errors(config))
        assert editor == loader
    assert jsonschema.Draft7Validator(tree).is_valid(_example())
    assert not jsonschema.Draft7Validator(tree).is_valid(typo)
