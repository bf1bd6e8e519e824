"""Build tool: generates ``spec/`` (HTML, Markdown, OpenAPI) from the prose in
``spec/src``, the schemas, and the library's registries (``python -m tools.specgen``).

No library module imports this package; ``vrm_protocol.cli`` (the composition
root) calls :func:`main_build` with the conformance suite's traceability.
"""

from __future__ import annotations

from tools.specgen.build import build_spec, main_build
from tools.specgen.errors import SpecBuildError

__all__ = ["SpecBuildError", "build_spec", "main_build"]
