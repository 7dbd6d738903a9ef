"""Only the package list lives here (everything else is in pyproject.toml): every ``spark_ls.*``
package is found automatically, and ``grammars/`` (one data folder per language: tree-sitter
queries and a manifest) ships inside the wheel as ``spark_ls_grammars``."""

from setuptools import find_namespace_packages, find_packages, setup

GRAMMARS = [
    "spark_ls_grammars",
    *(f"spark_ls_grammars.{p}" for p in find_namespace_packages(where="grammars")),
]

setup(
    packages=[*find_packages(include=["spark_ls", "spark_ls.*"]), *GRAMMARS],
    package_dir={"spark_ls_grammars": "grammars"},
    package_data={p: ["*.scm", "*.toml"] for p in GRAMMARS[1:]},
)
