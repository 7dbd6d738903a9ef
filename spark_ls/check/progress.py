"""Progress on stderr: a rich bar on a terminal, plain log lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from spark_ls.check.report import Target

if TYPE_CHECKING:
    from rich.progress import TaskID


class PlainProgress:
    """One line per finished action or notable event; nothing on success when ``quiet``."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._quiet = quiet
        self._total = 0
        self._done = 0

    def begin(self, files: int, actions: int) -> None:
        self._total = actions
        if not self._quiet:
            self._write(f"spark-ls check: {files} file(s), {actions} action(s) to run")

    def action_done(self, target: Target, outcome: str) -> None:
        self._done += 1
        if not self._quiet:
            self._write(f"[{self._done}/{self._total}] {target.label}: {outcome}")

    def file_done(self, rel_path: str) -> None:
        pass

    def tokens(self, count: int) -> None:
        pass

    def log(self, message: str) -> None:
        self._write(f"spark-ls: {message}")

    def end(self) -> None:
        pass

    def _write(self, line: str) -> None:
        print(line, file=self._stream, flush=True)


class RichProgress:
    """files, actions, tokens and elapsed time, redrawn in place."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = Console(file=stream or sys.stderr)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._files_task: TaskID | None = None
        self._actions_task: TaskID | None = None
        self._tokens = 0
        self._started = time.perf_counter()

    def begin(self, files: int, actions: int) -> None:
        self._progress.start()
        self._files_task = self._progress.add_task("files", total=files, extra="")
        self._actions_task = self._progress.add_task("actions", total=actions, extra="0 tokens")

    def action_done(self, target: Target, outcome: str) -> None:
        if self._actions_task is not None:
            self._progress.advance(self._actions_task)

    def file_done(self, rel_path: str) -> None:
        if self._files_task is not None:
            self._progress.advance(self._files_task)

    def tokens(self, count: int) -> None:
        self._tokens += count
        if self._actions_task is not None:
            self._progress.update(self._actions_task, extra=f"{self._tokens} tokens")

    def log(self, message: str) -> None:
        self._progress.console.print(f"spark-ls: {message}", markup=False, highlight=False)

    def end(self) -> None:
        self._progress.stop()


def make_progress(*, quiet: bool, stream: TextIO | None = None) -> PlainProgress | RichProgress:
    stream = stream or sys.stderr
    if not quiet and stream.isatty():
        return RichProgress(stream)
    return PlainProgress(stream, quiet=quiet)
