"""Print the README's config reference (Markdown tables) from the shipped JSON Schema.

    python scripts/schema-to-markdown.py           # print it
    python scripts/schema-to-markdown.py --write   # replace the block in README.md

The README holds this output between <!-- config-reference:start --> and
<!-- config-reference:end -->; tests/test_schema_docs.py fails when the two differ, so a key
added to the schema without rerunning this script (with --write) is caught.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "src" / "pytest_maintcheck" / "schema.json"
README = ROOT / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"

# $defs shown as a value type (explained once, above the tables) rather than opened up
VALUE_TYPES = ("name", "duration", "size", "threshold", "severity")
TYPE_WORDS = {"string": "text", "integer": "integer", "number": "number", "boolean": "true/false"}

Node = Mapping[str, Any]


def resolve(schema: Node, node: Node) -> tuple[str | None, Node]:
    """The $defs name a node refers to (if any) and the schema it stands for."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return None, node
    name = ref.removeprefix("#/$defs/")
    return name, schema["$defs"][name]


def type_of(schema: Node, node: Node) -> str:
    """The value's type in a few words: text, duration, a list of text, api | database ..."""
    name, target = resolve(schema, node)
    if name in VALUE_TYPES:
        return name
    if name == "stringList":
        return "list of text"
    if "const" in target:
        return json.dumps(target["const"])
    if "enum" in target:
        return " \\| ".join(str(v) for v in target["enum"])
    if "anyOf" in target:
        return " or ".join(type_of(schema, option) for option in target["anyOf"])
    kind = target.get("type")
    if isinstance(kind, list):
        return " or ".join(TYPE_WORDS.get(str(k), str(k)) for k in kind)
    if kind == "array":
        items = target.get("items", {})
        if "properties" in resolve(schema, items)[1]:
            return "list"
        return f"list of {type_of(schema, items)}"
    if kind == "object":
        return "object" if "properties" in target else "map"
    if kind == "null":
        return "null"
    if target.get("format") == "date":
        return "date"
    return TYPE_WORDS.get(str(kind), str(kind))


def text(value: str) -> str:
    """A description fit for one table cell."""
    return " ".join(value.split()).replace("|", "\\|").replace("*", "\\*")


def sentence(value: str) -> str:
    """A description that ends like a sentence, so the words after it read apart."""
    value = text(value)
    return value if value.endswith((".", ":", "!", "?")) else f"{value}."


def used_value_types(schema: Node) -> list[str]:
    """The value types some key refers to, in VALUE_TYPES order."""
    refs = set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(schema)))
    return [name for name in VALUE_TYPES if name in refs]


def legend(schema: Node, name: str) -> str:
    """One value type in a line; a threshold's warn and fail too."""
    about = sentence(schema["$defs"][name]["description"])
    if name == "threshold":
        levels = schema["$defs"]["threshold"]["anyOf"][1]["properties"]
        about += "".join(f" `{k}`: {_lower(sentence(v['description']))}" for k, v in levels.items())
    return f"- **{name}**: {about}"


def rows(schema: Node, node: Node, prefix: str) -> Iterator[tuple[str, str, str]]:
    """(key, type, description) for every property below node, depth first."""
    _, target = resolve(schema, node)
    if target.get("type") == "array":
        _, target = resolve(schema, target.get("items", {}))
        prefix = f"{prefix}[]." if prefix else ""
    elif isinstance(target.get("additionalProperties"), Mapping) and "properties" not in target:
        _, target = resolve(schema, target["additionalProperties"])
        prefix = f"{prefix}.<name>." if prefix else "<name>."
    elif prefix:
        prefix += "."
    required = set(target.get("required", ()))
    for key, prop in target.get("properties", {}).items():
        _, sub = resolve(schema, prop)
        shown = f"`{prefix}{key}`" + (" (required)" if key in required else "")
        about = prop.get("description") or sub.get("description", "")
        yield shown, type_of(schema, prop), text(about)
        if _opens(schema, sub):
            yield from rows(schema, sub, f"{prefix}{key}")


def _opens(schema: Node, node: Node) -> bool:
    """Whether the value has keys of its own to list (an object, a list or map of objects)."""
    if "properties" in node:
        return True
    for inner in (node.get("items"), node.get("additionalProperties")):
        if isinstance(inner, Mapping) and "properties" in resolve(schema, inner)[1]:
            return True
    return False


def _lower(value: str) -> str:
    return value[:1].lower() + value[1:]


def table(lines: list[tuple[str, str, str]]) -> list[str]:
    out = ["| key | type | what it is |", "| --- | --- | --- |"]
    out += [f"| {key} | {kind} | {about} |" for key, kind, about in lines]
    return out


def section_kind(schema: Node, node: Node) -> str:
    _, target = resolve(schema, node)
    if target.get("type") == "array":
        return "A list; each entry:"
    if isinstance(target.get("additionalProperties"), Mapping) and "properties" not in target:
        return "A map; each entry, by its name:"
    return "Keys:"


def markdown(schema: Node) -> str:
    out = [
        "<!-- generated by scripts/schema-to-markdown.py from src/pytest_maintcheck/schema.json;"
        " edit the schema, then run it with --write -->",
        "",
        "Value types used below:",
        "",
    ]
    out += [legend(schema, name) for name in used_value_types(schema)]
    sections = schema["properties"]
    plain = [key for key, prop in sections.items() if not _opens(schema, resolve(schema, prop)[1])]
    required = set(schema.get("required", ()))
    lines = [
        (f"`{key}`" + (" (required)" if key in required else ""), type_of(schema, sections[key]),
         text(sections[key].get("description", "")))
        for key in plain
    ]  # fmt: skip
    out += ["", "### Top level", "", *table(lines)]
    for key, prop in sections.items():
        if key in plain:
            continue
        about = prop.get("description") or resolve(schema, prop)[1].get("description", "")
        intro = f"{sentence(about)} {section_kind(schema, prop)}"
        out += ["", f"### `{key}`", "", intro, "", *table(list(rows(schema, prop, "")))]
    return "\n".join(out) + "\n"


def replace_block(readme: str, block: str) -> str:
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return f"{head}{START}\n{block}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the block in README.md")
    args = parser.parse_args()
    block = markdown(json.loads(SCHEMA.read_text(encoding="utf-8")))
    if args.write:
        README.write_text(replace_block(README.read_text(encoding="utf-8"), block), "utf-8")
    else:
        sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
