"""Build tools of the repository (not shipped): they read and write its files.

* :mod:`tools.codegen` generates the library's models from ``schemas/``
  (``python -m tools.codegen [--check]``);
* :mod:`tools.specgen` generates ``spec/`` from its sources
  (``python -m tools.specgen [--check]``);
* :mod:`tools.openapi` describes the HTTP binding as OpenAPI 3.1 (the spec
  builder writes it to ``spec/openapi.json``).

They may import every package of the repository; nothing shipped imports
them (ARCHITECTURE.md, enforced by the import contracts in pyproject.toml).
"""
