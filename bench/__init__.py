"""spark-ls benchmarks: `python -m bench [NAME ...]` prints a table and writes bench/RESULTS.md.

Each `bench/bench_<name>.py` defines `TITLE: str` and `run(quick: bool) -> dict` returning
{"rows": [ {column: value, ...}, ... ], "notes": [str, ...], "targets": [ (description, met: bool) ]}.
A benchmark measures; it never asserts.
"""
