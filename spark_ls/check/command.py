"""`spark-ls check`: the command line around the runner.

Entry points for spark_ls/cli.py: :func:`add_check_arguments` and :func:`run_check`.
Exit codes: 0 nothing proposed, 1 proposals made (written too with --fix), 2 errors (on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from spark_ls.actions.catalog import INSTRUCTION_ACTION_ID, ActionSpec
from spark_ls.check.files import (
    CheckInputError,
    SourceFile,
    UnreadableFile,
    changed_lines,
    collect_files,
    git_toplevel,
    read_source,
)
from spark_ls.check.findings import Finding, load_findings
from spark_ls.check.fixwrite import FixRefused, PendingWrite, write_atomically
from spark_ls.check.formats import FORMATS, FORMATTERS
from spark_ls.check.plan import (
    SyntaxFinding,
    parse_shard,
    plan_targets,
    scope_spans,
    shard_of,
)
from spark_ls.check.progress import make_progress
from spark_ls.check.report import CheckReport, Target
from spark_ls.check.runner import CountingSession, PreparedFile, ProgressSink, execute
from spark_ls.config import Secret, Settings, command_line_overrides, resolve_settings
from spark_ls.errors import ConfigError
from spark_ls.model.types import ModelError

DEFAULT_ACTIONS = ("fix-bug",)
DEFAULT_JOBS = 4
MAX_LISTED_ERRORS = 20  # repeated at the end of stderr; the structured formats carry all of them

CHECK_EPILOG = """\
exit codes:
  0  nothing proposed
  1  proposals made (with --fix: also written)
  2  errors (bad arguments, unreadable --diagnostics, model/session failures); messages on stderr
  A reply spark-ls refuses (it would not apply cleanly) is reported, not an error.

examples:
  spark-ls check --changed-since origin/main --format sarif -o spark-ls.sarif
  ruff check --exit-zero --output-format json > ruff.json && spark-ls check --diagnostics ruff.json
  spark-ls check --fix src/

settings: OPENAI_API_KEY / OPENAI_BASE_URL and SPARK_LS_* from the environment, [tool.spark-ls]
in pyproject.toml (or spark-ls.toml) at the git work tree's top; `spark-ls config` shows them."""


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `spark-ls check` options to ``parser`` (the `check` subcommand's parser)."""
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                        help="files and directories to check (default: .); inside a git work tree, "
                             "git's file list is used, so .gitignore is respected")
    what = parser.add_argument_group("what to run")
    what.add_argument("--action", action="append", default=[], metavar="ID[,ID...]",
                      help="actions to run on every function (default: fix-bug); any built-in or "
                           "user-defined action id from [tool.spark-ls] actions")
    what.add_argument("--instruction", metavar="TEXT",
                      help="a one-off instruction to apply to every function")
    what.add_argument("--language", action="append", default=[], metavar="NAME[,NAME...]",
                      help="only files of these languages (e.g. python,go)")
    what.add_argument("--changed-since", metavar="REF",
                      help="only the functions/classes touched since the merge base with REF "
                           "(git diff), e.g. origin/main")
    what.add_argument("--diagnostics", action="append", default=[], metavar="FILE",
                      help="propose a fix for each finding in FILE: SARIF 2.1.0, or ruff's "
                           "`--output-format json`; without --action, only these are fixed (plus "
                           "fix-bug on the changed functions with --changed-since)")
    what.add_argument("--no-syntax-errors", action="store_true",
                      help="do not propose fixes for spark-ls's own syntax-error findings")
    what.add_argument("--shard", metavar="I/N",
                      help="run only shard I of N (stable hash of path and scope); the shards "
                           "together make exactly the unsharded run")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, default="diff",
                     help="diff (a patch for `git apply`), sarif (2.1.0, with fixes), github "
                          "(workflow annotations), json")
    out.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    out.add_argument("--fix", action="store_true",
                     help="write the proposals into the files: all are staged first and nothing is "
                          "written if any file is refused (changed on disk, outside the paths); then each "
                          "file is replaced atomically (entirely old or entirely new), keeping encoding, "
                          "line endings and mode")
    out.add_argument("--show-prompt", action="store_true",
                     help="print each prompt sent to the model on stderr (API key masked)")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress output; refusals and errors still shown")
    running = parser.add_argument_group("running")
    running.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS, metavar="N",
                       help=f"concurrent model requests (pooled connections; default {DEFAULT_JOBS})")
    running.add_argument("--verify", metavar="CMD",
                         help="run CMD (e.g. \"pytest -x -q\") in a private copy of the repository "
                              "with each proposal applied: proposals that make its result worse are "
                              "dropped, ones that make it pass are marked verified")
    running.add_argument("--verify-timeout", type=float, default=None, metavar="SECONDS",
                         help="time limit for one --verify run (default 300)")
    running.add_argument("--second-look", action=argparse.BooleanOptionalAction, default=None,
                         help="ask the model whether each fix repairs a real defect before proposing it")
    # --model, --base-url, --transport, --record, --replay, --edit-format, --fallback-models, --pin and
    # --insecure come from spark_ls.cli.add_model_arguments, shared with `serve`.


def run_check(args: argparse.Namespace) -> int:
    """Run `spark-ls check` with parsed ``args``; returns the exit code."""
    return CheckCommand(args, stdout=sys.stdout, stderr=sys.stderr).run()


class CheckCommand:
    def __init__(self, args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.secret: str | None = None

    # ------------------------------------------------------------------ top level

    def run(self) -> int:
        try:
            return asyncio.run(self._run())
        except (CheckInputError, ConfigError, FixRefused) as exc:
            self._error(str(exc))
            return 2
        except KeyboardInterrupt:
            self._error("interrupted")
            return 130
        except Exception as exc:  # noqa: BLE001 - a bug must still end with exit 2 and a readable message
            self._error(f"internal error: {type(exc).__name__}: {exc}")
            if os.environ.get("SPARK_LS_DEBUG"):
                import traceback

                traceback.print_exc(file=self.stderr)
            return 2

    def _error(self, message: str) -> None:
        print(f"spark-ls check: error: {self._scrub(message)}", file=self.stderr, flush=True)

    def _scrub(self, text: str) -> str:
        # Belt and braces: nothing should carry the key, but if anything did, it is masked. Very
        # short "keys" (local test servers) would mangle ordinary words, so they are left alone.
        if self.secret and len(self.secret) >= 8:
            return text.replace(self.secret, "***")
        return text

    async def _run(self) -> int:
        started = time.perf_counter()
        args = self.args
        if args.jobs < 1:
            raise CheckInputError("--jobs must be at least 1")
        shard = None
        if args.shard:
            try:
                shard = parse_shard(args.shard)
            except ValueError as exc:
                raise CheckInputError(str(exc)) from None
        root = _root_for(args.paths)
        settings = self._settings(root)
        self.secret = settings.api_key.reveal() if settings.api_key else None
        specs, choices, diagnostic_choice = self._actions(settings)
        findings = [f for path in args.diagnostics for f in load_findings(path, root=root)]
        languages = [name.lower() for name in _split(args.language)]
        _check_languages(languages)

        report = CheckReport(root=str(root))
        selection = collect_files(args.paths, root=root)
        for path, reason in selection.skipped:
            self._note(report, path, reason)
        changed = None
        if args.changed_since:
            changed = changed_lines(args.changed_since, root, [f.rel_path for f in selection.files])
        findings_by_path: dict[str, list[Finding]] = {}
        for finding in findings:
            findings_by_path.setdefault(finding.rel_path, []).append(finding)
        unmatched = set(findings_by_path) - {f.rel_path for f in selection.files}
        if unmatched:
            count = sum(len(findings_by_path[p]) for p in unmatched)
            print(f"spark-ls check: {count} imported finding(s) are in files outside the checked paths; ignored",
                  file=self.stderr)

        prepared = self._prepare(selection.files, report, specs, choices, diagnostic_choice,
                                 findings_by_path, changed, languages, shard)
        report.files_checked = len(prepared)
        progress = make_progress(quiet=args.quiet, stream=self.stderr)
        if any(pf.targets for pf in prepared):
            try:
                await self._execute(prepared, specs, settings, report, progress)
            except ModelError as exc:  # the session could not even start (bad replay file, no model)
                report.errors.append(f"model ({exc.kind}): {exc.message}")
        verify_command = args.verify or settings.verify_command
        if verify_command:
            await self._verify(report, root, verify_command, settings, specs, progress)
        report.elapsed = time.perf_counter() - started

        # Proposals are verified one by one, so a failed request elsewhere does not stop --fix.
        if args.fix and report.changed_files:
            try:
                self._write_fixes(report, selection.roots)
            except (FixRefused, OSError) as exc:
                report.errors.append(f"--fix wrote nothing: {exc}")
        self._emit(report)
        print(self._scrub(report.summary()), file=self.stderr, flush=True)
        for error in report.errors[:MAX_LISTED_ERRORS]:
            self._error(error)
        if len(report.errors) > MAX_LISTED_ERRORS:
            self._error(f"... and {len(report.errors) - MAX_LISTED_ERRORS} more (all of them are in --format json/sarif)")
        return report.exit_code()

    # ------------------------------------------------------------------ setup

    def _settings(self, root: Path) -> Settings:
        overrides: dict[str, Any] = {"pool_size": self.args.jobs, **command_line_overrides(self.args)}
        resolved = resolve_settings(root, cli=overrides)
        for problem in resolved.problems:
            print(f"spark-ls check: warning: {self._scrub(problem)}", file=self.stderr, flush=True)
        settings = resolved.settings
        # In CI the key comes from the environment only (a secret), never from a checked-in file.
        key = os.environ.get("OPENAI_API_KEY")
        return dataclasses.replace(settings, api_key=Secret(key) if key else None)

    def _actions(self, settings: Settings) -> tuple[dict[str, Any], list[ActionSpec], ActionSpec | None]:
        from spark_ls.actions.catalog import load_catalog

        catalog = {spec.id: spec for spec in load_catalog(settings)}
        requested = _split(self.args.action)
        # Defaults a reviewer wants: every function without other input; with --diagnostics, the
        # findings' fixes, plus fix-bug on the functions a PR changed when --changed-since is given.
        if not requested and not self.args.instruction and (not self.args.diagnostics or self.args.changed_since):
            requested = list(DEFAULT_ACTIONS)
        unknown = [a for a in requested if a not in catalog]
        if unknown:
            raise CheckInputError(
                f"unknown action(s): {', '.join(unknown)}; available: {', '.join(sorted(catalog))}"
            )
        specs: dict[str, Any] = {}
        choices: list[ActionSpec] = []
        diagnostic_choice: ActionSpec | None = None
        for action_id in dict.fromkeys(requested):
            spec = catalog[action_id]
            if spec.applies_to == "selection":
                raise CheckInputError(f"action {action_id!r} needs an editor selection; it cannot run in check")
            specs[action_id] = spec
            choice = spec
            if spec.applies_to == "diagnostic":
                diagnostic_choice = diagnostic_choice or choice
            else:
                choices.append(choice)
        if self.args.instruction:
            spec = ActionSpec(
                id=INSTRUCTION_ACTION_ID, title="Apply instruction to {name}", kind="refactor.rewrite",
                instruction=self.args.instruction, applies_to="scope", scope_kinds=("function", "method"),
                allow_imports=True,
            )
            specs[spec.id] = spec
            choices.append(spec)
        if diagnostic_choice is None and "fix-diagnostic" in catalog and (
            self.args.diagnostics or not self.args.no_syntax_errors
        ):
            specs["fix-diagnostic"] = catalog["fix-diagnostic"]
            diagnostic_choice = catalog["fix-diagnostic"]
        return specs, choices, diagnostic_choice

    def _prepare(
        self,
        files: Sequence[SourceFile],
        report: CheckReport,
        specs: dict[str, Any],
        choices: Sequence[ActionSpec],
        diagnostic_choice: ActionSpec | None,
        findings_by_path: dict[str, list[Finding]],
        changed: dict[str, list[tuple[int, int]]] | None,
        languages: Sequence[str],
        shard: tuple[int, int] | None,
    ) -> list[PreparedFile]:
        from spark_ls.context import (
            all_scopes,
            language_for,
            snapshot_of,
            syntax_errors,
        )

        named = {Path(p).resolve() for p in self.args.paths if Path(p).is_file()}
        prepared: list[PreparedFile] = []
        for source in files:
            language = language_for(path=source.rel_path)
            if language is None:
                # Out of scope, like a linter: silently when found in a directory, with a word when
                # named on the command line.
                if source.path.resolve() in named:
                    self._note(report, source.rel_path, "not a source file spark-ls knows (by its extension)")
                continue
            if languages and language.name.lower() not in languages:
                continue
            if changed is not None and source.rel_path not in changed:
                continue
            try:
                decoded = read_source(source.path)
            except UnreadableFile as exc:
                self._note(report, source.rel_path, str(exc))
                continue
            if language.parser() is None:
                self._note(report, source.rel_path, f"the {language.name} grammar is not installed")
                continue
            snapshot = snapshot_of(decoded.text, language)
            spans = scope_spans(all_scopes(snapshot))
            problems = [] if self.args.no_syntax_errors else [
                SyntaxFinding(p.start_line, p.end_line, p.message) for p in syntax_errors(snapshot)
            ]
            file_choices = [c for c in choices if specs[c.id].supports(language.name)]
            diagnostic = diagnostic_choice if (
                diagnostic_choice is not None and specs[diagnostic_choice.id].supports(language.name)
            ) else None
            targets = plan_targets(
                source.rel_path, spans, actions=file_choices, diagnostic_action=diagnostic,
                findings=findings_by_path.get(source.rel_path, ()), syntax_problems=problems,
                changed=None if changed is None else changed[source.rel_path], lines=snapshot.lines,
            )
            if shard is not None:
                index, count = shard
                targets = [t for t in targets if shard_of(t.rel_path, t.group, count) == index]
            prepared.append(PreparedFile(source=source, original=decoded, snapshot=snapshot,
                                         targets=targets, language=language.name))
        return prepared

    def _note(self, report: CheckReport, path: str, reason: str) -> None:
        report.skipped.append((path, reason))
        print(f"spark-ls check: {path}: {reason}; skipped", file=self.stderr, flush=True)

    # ------------------------------------------------------------------ running

    async def _execute(
        self,
        prepared: Sequence[PreparedFile],
        specs: dict[str, Any],
        settings: Settings,
        report: CheckReport,
        progress: ProgressSink,
    ) -> None:
        from spark_ls.actions.run import ActionRequest, run_action
        from spark_ls.model import open_session

        session = open_session(settings, notify=lambda level, message: progress.log(f"{level}: {message}"))
        if settings.uses_local_model:
            progress.log(
                "no model endpoint configured (OPENAI_BASE_URL / OPENAI_API_KEY): "
                f"using the embedded local model ({session.model})"
            )
        counted: Any = CountingSession(session, report, progress)
        if getattr(self.args, "show_prompt", False):
            counted = _ShowingPrompts(counted, session, self.stderr, self._scrub)

        async def work(pf: PreparedFile, target: Target) -> str:
            request = ActionRequest(
                action=specs[target.action_id], path=target.rel_path, snapshot=pf.snapshot,
                start_line=target.start_line, end_line=target.end_line,
                diagnostic_message=target.message, instruction=target.instruction,
                problems=target.problems,
            )
            result = await run_action(request, counted, settings)
            return result.new_text

        try:
            await session.start()
            report.model = session.model
            await execute(prepared, work, jobs=self.args.jobs, report=report, progress=progress)
        finally:
            progress.end()
            await session.close()

    async def _verify(self, report: CheckReport, root: Path, command: str, settings: Settings,
                      specs: dict[str, Any], progress: ProgressSink) -> None:
        from spark_ls.check.verify import Verifier, VerifyError, verify_report

        timeout = self.args.verify_timeout or settings.verify_timeout
        verifier = Verifier(root, command, timeout=timeout, jobs=self.args.jobs)
        try:
            await verify_report(
                report, verifier, log=progress.log,
                preserves_behaviour=lambda action_id: bool(getattr(specs.get(action_id), "preserves_behaviour", False)),
            )
        except VerifyError as exc:
            report.errors.append(str(exc))
        finally:
            verifier.close()

    # ------------------------------------------------------------------ results

    def _write_fixes(self, report: CheckReport, roots: Sequence[Path]) -> None:
        writes = [
            PendingWrite(path=f.source.path, data=f.original.encode(f.new_text), expected=f.original.encode())
            for f in report.changed_files
            if f.new_text is not None
        ]
        written = write_atomically(writes, roots=roots)
        report.written = sorted(_relative(p, Path(report.root)) for p in written)
        for path in report.written:
            print(f"spark-ls check: fixed {path}", file=self.stderr, flush=True)

    def _emit(self, report: CheckReport) -> None:
        text = self._scrub(FORMATTERS[self.args.format](report))
        if self.args.output:
            try:
                Path(self.args.output).write_text(text, encoding="utf-8", newline="")
            except OSError as exc:
                raise CheckInputError(f"--output {self.args.output}: {exc.strerror or exc}") from None
        else:
            # Bytes, not the console encoding: a patch must reach `git apply` exactly.
            self.stdout.flush()
            binary = getattr(self.stdout, "buffer", None)
            if binary is not None:
                binary.write(text.encode("utf-8"))
                binary.flush()
            else:
                self.stdout.write(text)
                self.stdout.flush()


class _ShowingPrompts:
    """``--show-prompt``: print each request's prompt (as sent, key masked) before sending it."""

    def __init__(self, inner: Any, session: Any, stream: TextIO, scrub: Any) -> None:
        self._inner = inner
        self._session = session
        self._stream = stream
        self._scrub = scrub

    async def complete(self, request: Any, **kwargs: Any) -> Any:
        text = self._scrub(self._session.show_prompt(request))
        print(f"spark-ls check: prompt sent to {self._session.model}:\n{text}", file=self._stream, flush=True)
        return await self._inner.complete(request, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _check_languages(names: Sequence[str]) -> None:
    if not names:
        return
    from spark_ls.context import all_languages

    known = {spec.name.lower() for spec in all_languages()}
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        raise CheckInputError(f"unknown language(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def _root_for(paths: Sequence[str]) -> Path:
    """Paths in reports are relative to the git work tree of the first path (what `git apply`
    and code scanning expect), or to the current directory outside git."""
    first = Path(paths[0]) if paths else Path(".")
    directory = first if first.is_dir() else first.parent
    if not directory.exists():
        return Path.cwd().resolve()
    return git_toplevel(directory.resolve()) or Path.cwd().resolve()


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
