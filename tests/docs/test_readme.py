"""The README's code is part of the product: every block must run as written.

The Python block runs in process. Every shell block but the opening one (the
two install commands, which CI itself runs: ``.ci/run``) runs with ``bash -e``
in a fresh copy of the checkout, as a newcomer would run it after command 2:
``.venv/bin/vrm`` and ``.venv/bin/python`` are the installed ones (``vrm`` is
not on PATH), the inputs a block needs are made by the block itself, and the
files the commands leave behind must be ignored by ``.gitignore``. Each block
is bounded in time, and anything it started in the background is stopped.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: A block that does not finish by then has hung (e.g. waiting for a server that died).
BLOCK_TIMEOUT_SECONDS = 300
#: Never copied into the checkout a block runs in: build and tool output, the venv.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "out", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build", "dist"
)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def runnable_shell_blocks() -> list[str]:
    """Every shell block but the opening one (its two commands are CI's own first steps)."""
    return shell_blocks()[1:]


def test_readme_has_a_library_tour() -> None:
    assert python_blocks(), "the README lost its library tour"


def test_readme_python_blocks_run() -> None:
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_readme_opens_with_the_two_newcomer_commands() -> None:
    first_block = shell_blocks()[0]
    commands = [line for line in first_block.splitlines() if line.startswith("python3")]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install '.[agents]' && .venv/bin/vrm demo",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]
    # Nothing else runs in that block: everything after it is run by the test below.
    others = [
        line for line in first_block.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert others == commands


def test_readme_shell_blocks_need_no_activated_venv() -> None:
    """``vrm`` is not on PATH after command 1: every block calls ``.venv/bin/vrm``."""
    for block in runnable_shell_blocks():
        for line in block.splitlines():
            code = line.split("#", 1)[0]
            assert not re.search(r"(^|[;&|(]\s*|\$\()vrm\b", code.strip()), line


def _copy_of_the_checkout(destination: Path) -> Path:
    """The repository's files as a fresh checkout has them, with the installed venv."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=False
    )
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            source = ROOT / name
            if name and (source.is_file() or source.is_symlink()):
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / name, follow_symlinks=False)
    else:  # an unpacked source archive: no git, no build output either
        shutil.copytree(ROOT, destination, ignore=_NOT_SOURCES, symlinks=True, dirs_exist_ok=True)
    # Command 1 made .venv in the checkout; the tests run from that venv.
    (destination / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return destination


def _environment(home: Path) -> dict[str, str]:
    """The user's environment, without ``vrm`` on PATH and with a home of its own."""
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "vrm").exists()
    ]
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VRM_", "XDG_", "VIRTUAL_ENV"))
    }
    environment.update(PATH=os.pathsep.join(path), HOME=str(home), COLUMNS="120")
    return environment


def _tree(root: Path) -> list[Path]:
    """Every path under ``root`` (relative; parents before children), not entering the venv."""
    paths: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory).relative_to(root)
        subdirectories[:] = sorted(name for name in subdirectories if name != ".venv")
        paths.extend(here / name for name in [*subdirectories, *sorted(files)])
    return paths


def _created(before: set[Path], root: Path) -> list[str]:
    """Paths the block created: the topmost new ones, directories ending in ``/``."""
    created: list[str] = []
    new_directories: set[Path] = set()
    for relative in _tree(root):
        if relative in before or any(parent in new_directories for parent in relative.parents):
            continue
        if (root / relative).is_dir():
            new_directories.add(relative)
            created.append(f"{relative}/")
        else:
            created.append(str(relative))
    return created


def _not_ignored(paths: list[str]) -> list[str] | None:
    """Those of ``paths`` that ``.gitignore`` does not ignore; ``None`` without git."""
    if not paths or shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    result = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    ignored = set(result.stdout.splitlines())
    return [path for path in paths if path not in ignored]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return _copy_of_the_checkout(tmp_path / "checkout")


@pytest.mark.slow
@pytest.mark.parametrize(
    "block",
    runnable_shell_blocks(),
    ids=[f"block-{number}" for number in range(2, len(shell_blocks()) + 1)],
)
def test_readme_shell_block_runs_as_written(block: str, checkout: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    before = set(_tree(checkout))
    # -e: the block fails at its first failing command; -x: the log says which.
    process = subprocess.Popen(
        ["bash", "-e", "-x", "-c", block],
        cwd=checkout,
        env=_environment(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the block did not finish in {BLOCK_TIMEOUT_SECONDS} s:\n{block}\n{output}")
    finally:
        # Whatever the block left running in the background (a vendor when a
        # command after it failed) is in its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, f"README block failed:\n{block}\n--- output ---\n{output}"
    leftovers = _not_ignored(_created(before, checkout))
    assert not leftovers, f"the block leaves files .gitignore does not ignore: {leftovers}"
