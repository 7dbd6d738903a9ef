"""Plain data produced by a check run and consumed by the output formats."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_ls.check.files import DecodedText, SourceFile


@dataclass(frozen=True)
class Target:
    """One unit of work: run ``action_id`` on lines ``start_line..end_line`` (0-based, inclusive)
    of ``rel_path``. ``group`` names the scope the work belongs to; it is what --shard hashes, so
    every action on one scope lands in the same shard."""

    rel_path: str
    action_id: str
    title: str
    start_line: int
    end_line: int
    group: str
    scope_kind: str | None = None
    scope_name: str | None = None
    message: str | None = None  # the diagnostic to fix, if any
    rule_id: str | None = None  # the finding's rule (imported diagnostics), else None
    instruction: str | None = None
    order: int = 0  # position in the file's plan: merge priority and output order
    problems: tuple[tuple[int, str], ...] = ()  # file actions: (line, message) to fix

    @property
    def label(self) -> str:
        where = f"{self.scope_kind} {self.scope_name}" if self.scope_name else f"line {self.start_line + 1}"
        return f"{self.rel_path}:{self.start_line + 1}: {self.action_id} ({where})"


@dataclass(frozen=True)
class TextEdit:
    """A replacement in the *original* file. Lines and columns are 0-based; columns count code
    points; the end is exclusive."""

    start_line: int
    start_column: int
    end_line: int
    end_column: int
    new_text: str
    start: int  # str offsets, for merging
    end: int


@dataclass
class Proposal:
    target: Target
    new_text: str  # the whole file with only this proposal applied
    edits: list[TextEdit]
    diff: str  # this proposal alone, against the original file
    verified: bool = False  # --verify: the command failed before and passes with this proposal
    tests: str | None = None  # --verify: the command's result before -> with this proposal


@dataclass
class Refusal:
    target: Target
    kind: str  # "refused" (spark-ls would not apply the reply) | "conflict" | "model-error"
    reason: str


@dataclass
class FileResult:
    source: SourceFile
    original: DecodedText
    proposals: list[Proposal] = field(default_factory=list)  # applied to new_text, in order
    refusals: list[Refusal] = field(default_factory=list)
    new_text: str | None = None  # merged result; None when nothing was proposed
    language: str | None = None


@dataclass
class CheckReport:
    root: str
    files: list[FileResult] = field(default_factory=list)  # sorted by rel_path
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files_checked: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed: float = 0.0
    model: str | None = None
    written: list[str] = field(default_factory=list)
    verify_command: str | None = None  # --verify
    verify_baseline: str | None = None  # its result on the unchanged files

    @property
    def proposals(self) -> list[Proposal]:
        return [p for f in self.files for p in f.proposals]

    @property
    def refusals(self) -> list[Refusal]:
        return [r for f in self.files for r in f.refusals]

    @property
    def changed_files(self) -> list[FileResult]:
        return [f for f in self.files if f.new_text is not None and f.new_text != f.original.text]

    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.proposals else 0

    def count(self, kind: str) -> int:
        return sum(1 for r in self.refusals if r.kind == kind)

    def summary(self) -> str:
        tokens = self.input_tokens + self.output_tokens
        return (
            f"spark-ls check: {self.files_checked} file(s), {self.requests} request(s), "
            f"{len(self.proposals)} proposal(s) in {len(self.changed_files)} file(s), "
            + (f"{sum(p.verified for p in self.proposals)} verified by tests, " if self.verify_command else "")
            + f"{self.count('refused')} refused, {self.count('conflict')} conflict(s), "
            f"{len(self.skipped)} skipped, {len(self.errors)} error(s), "
            f"{tokens} tokens, {self.elapsed:.1f}s"
        )
