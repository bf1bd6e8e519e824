"""Sally buys a car (seed 000): the main job, as a script.

Starts three vendor agents (two dealers and the sound-system maker) as real
HTTP servers on 127.0.0.1, each with its own SQLite file, runs Sally's buyer
agent against them through all ten steps, reaches a third, offline dealer by
letter, and writes a transcript of every message and its verification.

It does what ``vrm demo`` does, through the reference buyer's public API, so a
developer can start from here to script a journey of their own:

    python examples/sally_buys_a_car.py [OUT_DIR]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rich.console import Console

from reference_buyer.journey import run_demo


def main() -> int:
    """Run the journey into OUT_DIR (default ``out/sally``); 0 when every step verified."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/sally")
    succeeded = asyncio.run(run_demo(out, Console()))
    print(f"transcript: {out / 'transcript.md'}")
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
