"""``python -m tools.specgen [--check] [--root DIR]``: regenerate ``spec/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.catalog import traceability, waivers
from tools.specgen import main_build


def main(argv: list[str] | None = None) -> int:
    """Build the specification; the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.specgen",
        description="Regenerate spec/ (HTML, Markdown, OpenAPI) from its sources.",
    )
    parser.add_argument("--check", action="store_true", help="fail (exit 1) if spec/ is stale")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    arguments = parser.parse_args(argv)
    # The suite's check catalogue gives each requirement the checks that test it.
    return main_build(
        arguments.root, traceability=traceability(), waivers=waivers(), check=arguments.check
    )


if __name__ == "__main__":
    sys.exit(main())
