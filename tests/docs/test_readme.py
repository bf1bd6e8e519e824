"""The README's code is part of the product: its Python block must run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_a_library_tour() -> None:
    assert python_blocks(), "the README lost its library tour"


def test_readme_python_blocks_run() -> None:
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_readme_opens_with_the_two_newcomer_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line.startswith("python3")]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/vrm demo",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]
