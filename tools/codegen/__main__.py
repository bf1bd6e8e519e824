"""``python -m tools.codegen [--check]``: message types and models from ``schemas/``."""

from __future__ import annotations

import argparse
import sys

from tools.codegen import main_generate


def main(argv: list[str] | None = None) -> int:
    """Run the generator; the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.codegen",
        description=(
            "Regenerate MessageType, the message-type lists of the envelope and of "
            "message.schema.json, and the models, from schemas/."
        ),
    )
    parser.add_argument("--check", action="store_true", help="fail (exit 1) if it is stale")
    arguments = parser.parse_args(argv)
    return main_generate(check=arguments.check)


if __name__ == "__main__":
    sys.exit(main())
