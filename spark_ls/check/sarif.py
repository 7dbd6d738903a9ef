"""SARIF 2.1.0 output: one result per proposal, each with a `fixes` entry that applies alone.

Regions are 1-based lines and columns; columns count Unicode code points (declared with
``columnKind``). Refused replies and errors are tool execution notifications, not results, so
they never show up as code-scanning alerts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from spark_ls.check.report import CheckReport, Proposal, Refusal

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
INFORMATION_URI = "https://github.com/spark-ls/spark-ls"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spark-ls")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "0.0.0"


def _artifact(rel_path: str) -> dict[str, str]:
    return {"uri": quote(rel_path), "uriBaseId": SRCROOT}


def changed_line_span(proposal: Proposal) -> tuple[int, int]:
    """0-based inclusive lines of the original the proposal changes (its scope if none)."""
    if not proposal.edits:
        return proposal.target.start_line, proposal.target.end_line
    start = min(e.start_line for e in proposal.edits)
    end = max(e.end_line if e.end_column > 0 or e.end_line == e.start_line else e.end_line - 1
              for e in proposal.edits)
    return start, max(start, end)


def proposal_message(proposal: Proposal) -> str:
    target = proposal.target
    where = f"{target.scope_kind} `{target.scope_name}`" if target.scope_name else f"line {target.start_line + 1}"
    text = f"spark-ls {target.action_id}: proposed change to {where}"
    if target.message:
        text += f" for {target.message}"
    return text + "."


def _fingerprint(proposal: Proposal) -> str:
    target = proposal.target
    return hashlib.sha256(f"{target.rel_path}\0{target.group}\0{target.action_id}".encode()).hexdigest()[:32]


def _result(proposal: Proposal, rule_index: int) -> dict[str, Any]:
    start, end = changed_line_span(proposal)
    replacements = [
        {
            "deletedRegion": {
                "startLine": edit.start_line + 1,
                "startColumn": edit.start_column + 1,
                "endLine": edit.end_line + 1,
                "endColumn": edit.end_column + 1,
            },
            "insertedContent": {"text": edit.new_text},
        }
        for edit in proposal.edits
    ]
    target = proposal.target
    result: dict[str, Any] = {
        "ruleId": target.action_id,
        "ruleIndex": rule_index,
        "level": "error" if target.rule_id == "syntax-error" else "warning",
        "message": {"text": proposal_message(proposal)},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": _artifact(target.rel_path),
                "region": {"startLine": start + 1, "endLine": end + 1},
            }
        }],
        "partialFingerprints": {"sparkLsScope/v1": _fingerprint(proposal)},
        "fixes": [{
            "description": {"text": target.title},
            "artifactChanges": [{"artifactLocation": _artifact(target.rel_path), "replacements": replacements}],
        }],
        "properties": {"diff": proposal.diff, "scope": target.group},
    }
    if target.rule_id:
        result["properties"]["diagnosticRule"] = target.rule_id
    if proposal.tests is not None:
        result["properties"]["verified"] = proposal.verified
        result["properties"]["tests"] = proposal.tests
    return result


def _notification(refusal: Refusal) -> dict[str, Any]:
    target = refusal.target
    return {
        "level": "error" if refusal.kind == "model-error" else "note",
        "message": {"text": f"{target.action_id} {refusal.kind}: {refusal.reason}"},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": _artifact(target.rel_path),
                "region": {"startLine": target.start_line + 1, "endLine": target.end_line + 1},
            }
        }],
        "descriptor": {"id": f"spark-ls/{refusal.kind}"},
    }


def to_sarif(report: CheckReport) -> dict[str, Any]:
    proposals = report.proposals
    rule_ids: list[str] = []
    for proposal in proposals:
        if proposal.target.action_id not in rule_ids:
            rule_ids.append(proposal.target.action_id)
    rules = [
        {
            "id": rule_id,
            "name": "".join(part.capitalize() for part in rule_id.replace("_", "-").split("-")) or rule_id,
            "shortDescription": {"text": f"spark-ls action {rule_id}: a model-proposed, verified change"},
            "defaultConfiguration": {"level": "warning"},
        }
        for rule_id in rule_ids
    ]
    notifications = [_notification(r) for r in report.refusals]
    notifications += [{"level": "warning", "message": {"text": f"{path}: {reason}"}} for path, reason in report.skipped]
    notifications += [{"level": "error", "message": {"text": error}} for error in report.errors]
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "spark-ls", "version": _version(), "informationUri": INFORMATION_URI, "rules": rules,
        }},
        "originalUriBaseIds": {SRCROOT: {"uri": Path(report.root).resolve().as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [{
            "executionSuccessful": not report.errors,
            "toolExecutionNotifications": notifications,
        }],
        "results": [_result(p, rule_ids.index(p.target.action_id)) for p in proposals],
    }
    if report.model:
        run["properties"] = {"model": report.model}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
