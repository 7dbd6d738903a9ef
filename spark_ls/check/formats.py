"""Output formats: diff (one `git apply`-able patch), sarif, github (workflow commands), json.

Lines and columns in json/github/sarif are 1-based; columns count code points.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from spark_ls.check.report import CheckReport, Proposal, Refusal
from spark_ls.check.runner import file_diff
from spark_ls.check.sarif import changed_line_span, proposal_message, to_sarif

FORMATS = ("diff", "sarif", "github", "json")


def format_diff(report: CheckReport) -> str:
    """The merged change of every file, files in sorted path order."""
    return "".join(
        _verify_comments(report, f.proposals) + file_diff(f.original, f.new_text, f.source.rel_path)
        for f in report.changed_files
        if f.new_text is not None
    )


def _verify_comments(report: CheckReport, proposals: list[Proposal]) -> str:
    """With --verify, one comment line per proposal before its file's section (`git apply`
    ignores text before a diff's headers)."""
    if not report.verify_command:
        return ""
    return "".join(
        f"# spark-ls {p.target.action_id} {p.target.scope_name or p.target.group}: "
        f"{'verified' if p.verified else 'not verified'} ({p.tests})\n"
        for p in proposals
    )


def format_sarif(report: CheckReport) -> str:
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n"


# GitHub workflow command escaping (as in @actions/core): data escapes %, CR, LF; property
# values additionally escape ':' and ','.
def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, message: str, **properties: Any) -> str:
    props = ",".join(f"{k}={_escape_property(str(v))}" for k, v in properties.items() if v is not None)
    return f"::{level} {props}::{_escape_data(message)}" if props else f"::{level}::{_escape_data(message)}"


def format_github(report: CheckReport) -> str:
    lines: list[str] = []
    for proposal in report.proposals:
        start, end = changed_line_span(proposal)
        lines.append(_command(
            "warning", proposal_message(proposal) + "\n\n" + proposal.diff,
            file=proposal.target.rel_path, line=start + 1, endLine=end + 1,
            title=f"spark-ls: {proposal.target.title}",
        ))
    for refusal in report.refusals:
        target = refusal.target
        lines.append(_command(
            "error" if refusal.kind == "model-error" else "notice",
            f"{target.action_id} {refusal.kind}: {refusal.reason}",
            file=target.rel_path, line=target.start_line + 1, endLine=target.end_line + 1,
            title=f"spark-ls: {refusal.kind}",
        ))
    for path, reason in report.skipped:
        lines.append(_command("notice", f"skipped: {reason}", file=path, title="spark-ls: skipped"))
    for error in report.errors:
        lines.append(_command("error", error, title="spark-ls: error"))
    return "".join(line + "\n" for line in lines)


def _proposal_json(proposal: Proposal) -> dict[str, Any]:
    target = proposal.target
    start, end = changed_line_span(proposal)
    return {
        "path": target.rel_path,
        "action": target.action_id,
        "title": target.title,
        "scope": target.group,
        "scope_kind": target.scope_kind,
        "scope_name": target.scope_name,
        "target": {"start_line": target.start_line + 1, "end_line": target.end_line + 1},
        "start_line": start + 1,
        "end_line": end + 1,
        "message": proposal_message(proposal),
        "diagnostic": target.message,
        "rule_id": target.rule_id,
        "diff": proposal.diff,
        "verified": proposal.verified,
        "tests": proposal.tests,
        "edits": [
            {
                "start": {"line": e.start_line + 1, "column": e.start_column + 1},
                "end": {"line": e.end_line + 1, "column": e.end_column + 1},
                "new_text": e.new_text,
            }
            for e in proposal.edits
        ],
    }


def _refusal_json(refusal: Refusal) -> dict[str, Any]:
    target = refusal.target
    return {
        "path": target.rel_path,
        "action": target.action_id,
        "scope": target.group,
        "kind": refusal.kind,
        "reason": refusal.reason,
        "start_line": target.start_line + 1,
        "end_line": target.end_line + 1,
    }


def format_json(report: CheckReport) -> str:
    document = {
        "version": 1,
        "tool": "spark-ls",
        "model": report.model,
        "proposals": [_proposal_json(p) for p in report.proposals],
        "refusals": [_refusal_json(r) for r in report.refusals],
        "skipped": [{"path": path, "reason": reason} for path, reason in report.skipped],
        "errors": list(report.errors),
        "written": list(report.written),
        "summary": {
            "files": report.files_checked,
            "requests": report.requests,
            "proposals": len(report.proposals),
            "refused": report.count("refused"),
            "conflicts": report.count("conflict"),
            "model_errors": report.count("model-error"),
            "exit_code": report.exit_code(),
            "verified": sum(p.verified for p in report.proposals),
        },
        "verify": {"command": report.verify_command, "baseline": report.verify_baseline}
        if report.verify_command else None,
        # Everything above is the same for any --jobs; these vary with timing and connection reuse.
        "stats": {
            "input_tokens": report.input_tokens,
            "output_tokens": report.output_tokens,
            "elapsed_seconds": round(report.elapsed, 3),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


FORMATTERS: dict[str, Callable[[CheckReport], str]] = {
    "diff": format_diff,
    "sarif": format_sarif,
    "github": format_github,
    "json": format_json,
}
