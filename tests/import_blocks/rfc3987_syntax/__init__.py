"""Stands in for rfc3987-syntax under the tests: importing it fails, so jsonschema skips its "iri" check.

jsonschema imports rfc3987-syntax, when it is installed, for one format check
(``"format": "iri"``); that import builds a Lark grammar, 1.7 s of CPU, in every
process that imports nbformat (nbformat -> jsonschema). Under ``make test`` those
are about 17: pytest and its workers, the graders' worker processes, nbgrader,
Sphinx, the Jupyter servers. nbformat validates notebooks without any format
checker, so no test depends on the check. ``tests/conftest.py`` puts this folder
first on ``PYTHONPATH``, for the test processes and every process they start.
"""

raise ImportError("rfc3987_syntax is blocked under the tests (see tests/import_blocks/rfc3987_syntax)")
