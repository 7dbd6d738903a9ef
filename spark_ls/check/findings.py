"""Findings from other linters (`--diagnostics FILE`), so each one gets a proposed fix.

Two formats are understood, detected from the content: SARIF 2.1.0 (any tool: ruff, CodeQL,
semgrep, eslint's SARIF formatter...) and ruff's own JSON (`ruff check --output-format json`).
Locations are turned into paths relative to the check root and 0-based line ranges.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from spark_ls.check.files import CheckInputError


@dataclass(frozen=True)
class Finding:
    """One diagnostic to fix. Lines are 0-based and inclusive."""

    rel_path: str
    start_line: int
    end_line: int
    message: str
    rule_id: str
    tool: str


def load_findings(path: str, *, root: Path) -> list[Finding]:
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CheckInputError(f"--diagnostics {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckInputError(f"--diagnostics {path}: not JSON ({exc})") from None
    base = Path(path).resolve().parent
    if isinstance(data, dict) and "runs" in data:
        findings = list(_from_sarif(data, root=root, base=base))
    elif isinstance(data, list) and all(isinstance(d, dict) and "filename" in d for d in data):
        findings = list(_from_ruff(data, root=root))
    else:
        raise CheckInputError(
            f"--diagnostics {path}: neither SARIF 2.1.0 nor ruff JSON (`ruff check --output-format json`)"
        )
    return sorted(set(findings), key=lambda f: (f.rel_path, f.start_line, f.end_line, f.rule_id, f.message))


def _relative(location: str, root: Path, base: Path) -> str:
    candidate = Path(location)
    if not candidate.is_absolute():
        # Relative URIs in SARIF are usually relative to the source root (%SRCROOT%).
        return Path(os.path.normpath(location)).as_posix()
    try:
        return Path(os.path.abspath(candidate)).relative_to(root).as_posix()
    except ValueError:
        try:
            return candidate.resolve().relative_to(root).as_posix()
        except ValueError:
            return candidate.as_posix()


def _from_ruff(items: list[dict[str, Any]], *, root: Path) -> Iterable[Finding]:
    for item in items:
        location = item.get("location") or {}
        end = item.get("end_location") or location
        start_line = int(location.get("row", 1)) - 1
        end_line = max(int(end.get("row", start_line + 1)) - 1, start_line)
        # ruff reports an end at column 1 of the following line for whole-line ranges.
        if end_line > start_line and int(end.get("column", 1)) <= 1:
            end_line -= 1
        code = item.get("code") or item.get("name") or "ruff"
        yield Finding(
            rel_path=_relative(str(item["filename"]), root, root),
            start_line=max(start_line, 0),
            end_line=max(end_line, 0),
            message=f"{code}: {item.get('message', '')}".strip(),
            rule_id=str(code),
            tool="ruff",
        )


def _from_sarif(log: dict[str, Any], *, root: Path, base: Path) -> Iterable[Finding]:
    for run in log.get("runs") or []:
        tool = ((run.get("tool") or {}).get("driver") or {}).get("name") or "sarif"
        bases = _uri_bases(run, root)
        artifacts = run.get("artifacts") or []
        for result in run.get("results") or []:
            message = _message_text(result, run)
            rule_id = str(result.get("ruleId") or (result.get("rule") or {}).get("id") or tool)
            for location in (result.get("locations") or [])[:1]:
                physical = location.get("physicalLocation") or {}
                artifact = physical.get("artifactLocation") or {}
                if "uri" not in artifact and isinstance(artifact.get("index"), int):
                    index = artifact["index"]
                    if 0 <= index < len(artifacts):
                        artifact = {**(artifacts[index].get("location") or {}), **artifact}
                uri = artifact.get("uri")
                if not uri:
                    continue
                region = physical.get("region") or {}
                start_line = int(region.get("startLine", 1)) - 1
                end_line = int(region.get("endLine", start_line + 1)) - 1
                if end_line > start_line and region.get("endColumn") == 1:
                    end_line -= 1
                yield Finding(
                    rel_path=_relative(_uri_to_path(uri, artifact.get("uriBaseId"), bases), root, base),
                    start_line=max(start_line, 0),
                    end_line=max(end_line, start_line, 0),
                    message=f"{rule_id}: {message}" if message else rule_id,
                    rule_id=rule_id,
                    tool=str(tool),
                )


def _uri_bases(run: dict[str, Any], root: Path) -> dict[str, str]:
    bases: dict[str, str] = {}
    for name, value in (run.get("originalUriBaseIds") or {}).items():
        uri = (value or {}).get("uri")
        if uri:
            bases[name] = _uri_to_path(uri, None, {})
    return bases


def _uri_to_path(uri: str, base_id: str | None, bases: dict[str, str]) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    path = unquote(uri if not parsed.scheme else parsed.path)
    if base_id and base_id in bases:
        return os.path.join(bases[base_id], path)
    return path


def _message_text(result: dict[str, Any], run: dict[str, Any]) -> str:
    message = result.get("message") or {}
    text = message.get("text") or message.get("markdown")
    if text:
        arguments = message.get("arguments") or []
        for index, argument in enumerate(arguments):
            text = text.replace("{" + str(index) + "}", str(argument))
        return str(text)
    # Message given only by id: look it up in the rule's messageStrings.
    message_id = message.get("id")
    rule_id = result.get("ruleId")
    for rule in ((run.get("tool") or {}).get("driver") or {}).get("rules") or []:
        if rule.get("id") == rule_id:
            strings = rule.get("messageStrings") or {}
            if message_id in strings:
                return str(strings[message_id].get("text", ""))
            return str((rule.get("shortDescription") or {}).get("text", ""))
    return ""
