"""Documents generated from the one declaration of the settings (:class:`spark_ls.config.Settings`):

- the JSON schema of ``[tool.spark-ls]`` / ``spark-ls.toml`` (``docs/settings.schema.json``);
- the ``contributes.configuration`` section of the VS Code extension's ``package.json``;
- the settings table in README.md ("Configuration").

``python -m spark_ls.settings_schema --write`` regenerates both; tests check they are current.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spark_ls.config import FIELDS, SettingInfo, Settings, camel, info, kebab

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO / "docs" / "settings.schema.json"
VSCODE_PACKAGE = REPO / "editors" / "vscode" / "package.json"
VSCODE_PREFIX = "spark."
# Settings of the VS Code extension itself (how it starts the server); not server settings.
VSCODE_CLIENT_ONLY = ("serverPath", "pythonPath", "importStrategy", "trace.server")

_ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "instruction"],
    "properties": {
        "id": {"type": "string", "description": "Action id (default: derived from the title)."},
        "title": {"type": "string", "description": "Title shown in the editor; {name} {kind} {message} {line} {language} {selection_lines} are filled in."},
        "instruction": {"type": "string", "description": "What the model is asked to do (same placeholders)."},
        "kind": {"type": "string", "pattern": "^(quickfix|refactor|source)", "default": "refactor.rewrite",
                 "description": "LSP code action kind: quickfix, refactor.* or source.*."},
        "applies_to": {"enum": ["diagnostic", "scope", "selection", "file"], "default": "scope",
                       "description": "What the action edits."},
        "languages": {"type": "array", "items": {"type": "string"}, "default": ["*"],
                      "description": "Languages it is offered for (default: all)."},
        "scope_kinds": {"type": "array", "items": {"type": "string"}, "default": ["function", "method", "class"],
                        "description": "Scopes it is offered on."},
        "allow_imports": {"type": "boolean", "default": False, "description": "May add to the import block."},
        "allow_new_definitions": {"type": "boolean", "default": False,
                                  "description": "May add definitions next to its target (never one shadowing a name)."},
        "requires": {"type": "string", "description": "A regular expression the target's text must match."},
    },
    "additionalProperties": False,
}


def _type_schema(name: str) -> dict[str, Any]:
    hint = typing.get_type_hints(Settings)[name]
    meta: SettingInfo = info(name)
    default = getattr(Settings(), name)
    optional = type(None) in typing.get_args(hint)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
    schema: dict[str, Any]
    if name == "actions":
        schema = {
            "oneOf": [
                {"type": "array", "items": _ACTION_SCHEMA},
                {"type": "object", "additionalProperties": {**_ACTION_SCHEMA, "required": ["title", "instruction"]}},
            ],
            "default": [],
        }
    elif base is bool:
        schema = {"type": "boolean", "default": default}
    elif base is int:
        schema = {"type": "integer", "default": default}
    elif base is float:
        schema = {"type": "number", "default": default}
    elif base == tuple[str, ...]:
        schema = {"type": "array", "items": {"type": "string"}, "default": list(default)}
    else:
        schema = {"type": ["string", "null"] if optional else "string", "default": default}
    if meta.choices:
        schema["enum"] = list(meta.choices)
    if meta.minimum is not None:
        schema["minimum"] = meta.minimum
    if meta.maximum is not None:
        schema["maximum"] = meta.maximum
    return schema


def json_schema() -> dict[str, Any]:
    """JSON schema (draft 2020-12) of ``[tool.spark-ls]``; keys a repository may not set are
    left out, so an editor validating pyproject.toml flags them."""
    properties: dict[str, Any] = {}
    for name in FIELDS:
        meta = info(name)
        if meta.untrusted:
            continue
        entry = {"description": meta.description, **_type_schema(name)}
        properties[name] = entry
        if kebab(name) != name:
            properties[kebab(name)] = {"description": f"Same as `{name}`.", **_type_schema(name)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/spark-ls/spark-ls/blob/main/docs/settings.schema.json",
        "title": "spark-ls settings ([tool.spark-ls] in pyproject.toml, or spark-ls.toml)",
        "description": "Generated from spark_ls/config.py by `python -m spark_ls.settings_schema --write`. "
        "base_url, api_key, tls_verify, record, replay and other keys marked untrusted cannot be set "
        "by a repository's own config: use the environment or your editor's settings.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def vscode_configuration(existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``contributes.configuration`` for the VS Code extension: its own client settings (kept
    from ``existing``) followed by every server setting as ``spark.<camelCase>``."""
    current = dict((existing or {}).get("properties", {}))
    properties: dict[str, Any] = {
        key: value for key, value in current.items()
        if key.removeprefix(VSCODE_PREFIX) in VSCODE_CLIENT_ONLY
    }
    for name in FIELDS:
        meta = info(name)
        if not meta.editor:
            continue
        schema = _type_schema(name)
        if schema.get("type") == ["string", "null"]:
            schema = {**schema, "type": "string", "default": ""}  # VS Code: empty means unset
            description = meta.description + " Empty: unset."
        else:
            description = meta.description
        entry: dict[str, Any] = {**schema, "markdownDescription": description}
        if meta.untrusted:
            # A workspace's .vscode/settings.json is as untrusted as its pyproject.toml.
            entry["scope"] = "machine"
        elif meta.scope == "folder":
            entry["scope"] = "resource"
        else:
            entry["scope"] = "window"
        properties[VSCODE_PREFIX + camel(name)] = entry
    return {"title": "spark-ls", "properties": properties}


README_PATH = REPO / "README.md"
README_START = "<!-- settings-table: generated by `python -m spark_ls.settings_schema --write` -->"
README_END = "<!-- /settings-table -->"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, tuple):
        return "`" + json.dumps(list(value)) + "`"
    return "`" + json.dumps(value) + "`" if not isinstance(value, str) else f"`{value}`"


def readme_table() -> str:
    """The settings table of README "Configuration"."""
    rows = [
        "| setting (editor name) | default | env | scope | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    defaults = Settings()
    for name in FIELDS:
        meta = info(name)
        names = f"`{name}`" + (f" (`{camel(name)}`)" if camel(name) != name else "")
        if meta.untrusted:
            names += " †"
        env = f"`SPARK_LS_{name.upper()}`" if meta.env else "—"
        if name == "api_key":
            env = "`OPENAI_API_KEY`"
        elif name == "base_url":
            env = "`OPENAI_BASE_URL`, " + env
        description = meta.description.replace("|", "\\|")
        limits = []
        if meta.minimum is not None:
            limits.append(f"≥ {_num(meta.minimum)}")
        if meta.maximum is not None:
            limits.append(f"≤ {_num(meta.maximum)}")
        if limits:
            description += f" ({', '.join(limits)})"
        rows.append(f"| {names} | {_cell(getattr(defaults, name))} | {env} | {meta.scope} | {description} |")
    return "\n".join(rows) + "\n"


def render_readme(text: str) -> str:
    start = text.index(README_START) + len(README_START)
    end = text.index(README_END, start)
    return text[:start] + "\n" + readme_table() + text[end:]


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def render_package_json(text: str) -> str:
    """``text`` (package.json) with only ``contributes.configuration`` regenerated; the rest of
    the file keeps its hand formatting."""
    data = json.loads(text)
    config = vscode_configuration(data.get("contributes", {}).get("configuration"))
    marker = text.index('"contributes"')
    start = text.index('"configuration"', marker)
    brace = text.index("{", start)
    _, end = json.JSONDecoder().raw_decode(text, brace)
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start]
    body = json.dumps(config, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)
    return text[:brace] + body + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_ls.settings_schema")
    parser.add_argument("--write", action="store_true", help="rewrite docs/settings.schema.json and package.json")
    args = parser.parse_args(argv)
    outputs = {
        SCHEMA_PATH: render_schema(),
        VSCODE_PACKAGE: render_package_json(VSCODE_PACKAGE.read_text("utf-8")),
        README_PATH: render_readme(README_PATH.read_text("utf-8")),
    }
    stale = [path for path, text in outputs.items() if not path.is_file() or path.read_text("utf-8") != text]
    if args.write:
        for path in stale:
            path.write_text(outputs[path], encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    for path in stale:
        print(f"{path.relative_to(REPO)} is out of date: run python -m spark_ls.settings_schema --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
