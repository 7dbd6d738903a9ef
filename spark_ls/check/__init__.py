"""Headless CI lint: `spark-ls check` (files, shards, jobs -> diff / SARIF / github / json).

Must not import pygls or lsprotocol: it runs where no editor does.
"""

from spark_ls.check.command import add_check_arguments, run_check

__all__ = ["add_check_arguments", "run_check"]
