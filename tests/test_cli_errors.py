"""Bad input to any ``vrm`` command ends with one line and a non-zero exit, never a traceback.

Table-driven over the newcomer's mistakes (issue 9, "The CLI as a newcomer meets
it"): a port out of range, a key file that already exists, a directory where a
file is expected, a garbage, public-only, symmetric (``oct``) or empty key file,
``--at notatime``, garbage policy or JSON files, a read-only or foreign store,
a target that is not a URL. Every command runs as a subprocess of the installed
``vrm`` entry point, as a user runs it.

Exit codes: 1 for the project's own user errors (one line on stderr), 2 for
click's usage errors (click's usage text, ending with exactly one ``Error:``
line). A genuine bug shows a traceback only under ``vrm --debug`` or
``VRM_DEBUG=1`` (tested in process at the end, with a command that is a bug).

Run as root, the commands run without CAP_DAC_OVERRIDE (``setpriv``), so that a
read-only directory is read-only for them as it is for every other user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from vrm_protocol import cli as vrm_cli
from vrm_protocol.codec import encode
from vrm_protocol.keys import PairwiseIdentity

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "schemas" / "examples" / "personal-rfi.sally-family-car.json"
#: The installed console script, beside the interpreter running the tests.
VRM = Path(sys.executable).with_name("vrm")
#: Long enough for the slowest failing start on a loaded machine; a command
#: that does not end by then has started serving instead of refusing.
TIMEOUT_SECONDS = 90
#: Root bypasses file modes; without these capabilities it does not.
AS_A_USER = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    if os.geteuid() == 0 and shutil.which("setpriv")
    else []
)
NEEDS_A_USER = os.geteuid() == 0 and not AS_A_USER


@dataclass(frozen=True)
class Case:
    """One bad invocation: its arguments, the exit code, what the line must name."""

    id: str
    argv: tuple[str, ...]
    exit_code: int
    mentions: str = ""
    read_only: bool = False
    #: An agent's command (not this part's to edit): exit 1 from the root's error
    #: boundary today, or 2 once the agent refuses the input as a usage error itself
    #: (e.g. ``--port`` typed as ``click.IntRange(0, 65535)``). One line either way.
    or_usage: bool = False


CASES = [
    # --- library commands (vrm_protocol/cli.py) ---
    Case("unknown-command", ("no-such-command",), 2, "no-such-command"),
    Case("keys-new-exists", ("keys", "new", "-o", "good.jwk"), 1, "good.jwk"),
    Case("keys-new-directory", ("keys", "new", "-o", "adir"), 2, "adir"),
    Case("keys-new-no-parent", ("keys", "new", "-o", "missing/k.jwk"), 1, "missing"),
    Case("keys-new-read-only", ("keys", "new", "-o", "readonly/k.jwk"), 1, "readonly", True),
    Case("keys-new-bad-alg", ("keys", "new", "--alg", "RS256", "-o", "k.jwk"), 2, "RS256"),
    Case("sign-garbage-key", ("sign", "payload.json", "--key", "garbage.jwk"), 1, "garbage.jwk"),
    Case("sign-empty-key", ("sign", "payload.json", "--key", "empty.jwk"), 1, "empty.jwk"),
    Case("sign-oct-key", ("sign", "payload.json", "--key", "oct.jwk"), 1, "oct.jwk"),
    Case("sign-public-key", ("sign", "payload.json", "--key", "public.jwk"), 1, "public.jwk"),
    Case("sign-list-key", ("sign", "payload.json", "--key", "list.jwk"), 1, "list.jwk"),
    Case("sign-directory-key", ("sign", "payload.json", "--key", "adir"), 2, "adir"),
    Case("sign-missing-key", ("sign", "payload.json", "--key", "nope.jwk"), 2, "nope.jwk"),
    Case("sign-garbage-payload", ("sign", "garbage.json", "--key", "good.jwk"), 1, "garbage"),
    Case("sign-directory-payload", ("sign", "adir", "--key", "good.jwk"), 2, "adir"),
    Case(
        "sign-output-directory",
        ("sign", "payload.json", "--key", "good.jwk", "-o", "adir"),
        2,
        "adir",
    ),
    Case(
        "sign-output-read-only",
        ("sign", "payload.json", "--key", "good.jwk", "-o", "readonly/msg.jws"),
        1,
        "readonly",
        True,
    ),
    Case("verify-at-not-a-time", ("verify", "msg.jws", "--at", "notatime"), 2, "notatime"),
    Case(
        "verify-at-not-a-date",
        ("verify", "msg.jws", "--at", "2027-02-31T09:00:00Z"),
        2,
        "2027-02-31",
    ),
    Case("verify-garbage-jwks", ("verify", "msg.jws", "--jwks", "garbage.json"), 1, "garbage"),
    Case("verify-key-as-jwks", ("verify", "msg.jws", "--jwks", "good.jwk"), 1, "good.jwk"),
    Case("verify-garbage-token", ("verify", "garbage.json"), 1, "garbage.json"),
    Case("verify-directory", ("verify", "adir"), 2, "adir"),
    Case("verify-stale", ("verify", "msg.jws", "--at", "2030-01-01T00:00:00Z"), 1, "msg.jws"),
    Case("validate-directory", ("validate", "adir"), 2, "adir"),
    Case("validate-garbage", ("validate", "garbage.json"), 1, "garbage.json"),
    # --- the vendor agent (reference_vendor/cli.py, covered by the root handler) ---
    Case(
        "vendor-port-out-of-range",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "v1", "--port", "70000"),
        1,
        "port",
        or_usage=True,
    ),
    Case(
        "vendor-empty-key",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "vendor-empty-key"),
        1,
        or_usage=True,
    ),
    Case(
        "vendor-garbage-key",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "vendor-garbage-key"),
        1,
        or_usage=True,
    ),
    Case(
        "vendor-oct-key",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "vendor-oct-key"),
        1,
        or_usage=True,
    ),
    Case(
        "vendor-public-key",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "vendor-public-key"),
        1,
        or_usage=True,
    ),
    Case(
        "vendor-garbage-store",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "vendor-garbage-store"),
        1,
        or_usage=True,
    ),
    Case(
        "vendor-read-only-store",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "readonly"),
        1,
        read_only=True,
        or_usage=True,
    ),
    Case(
        "vendor-data-dir-is-a-file",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "good.jwk"),
        2,
        "good.jwk",
    ),
    Case(
        "vendor-garbage-catalogue",
        ("vendor", "serve", "--catalogue", "garbage.toml", "--data-dir", "v2"),
        1,
        "garbage.toml",
    ),
    Case(
        "vendor-garbage-issuer",
        (
            "vendor",
            "serve",
            "--catalogue",
            "dealer-mayfair",
            "--data-dir",
            "v3",
            "--trust-issuer",
            "garbage.json",
        ),
        1,
        "garbage.json",
    ),
    Case(
        "vendor-bad-host",
        ("vendor", "serve", "--catalogue", "dealer-mayfair", "--data-dir", "v4", "--host", "999.1"),
        1,
        "999.1",
        or_usage=True,
    ),
    Case(
        "vendor-export-read-only",
        ("vendor", "export", "--data-dir", "readonly", "--peer", "did:jwk:x"),
        1,
        read_only=True,
        or_usage=True,
    ),
    Case(
        "vendor-send-notice-not-a-url",
        ("vendor", "send-notice", "--url", "notaurl", "--peer", "did:jwk:x"),
        1,
        "notaurl",
        or_usage=True,
    ),
    Case(
        "vendor-send-notice-nobody-there",
        ("vendor", "send-notice", "--url", "http://127.0.0.1:9", "--peer", "did:jwk:x"),
        1,
    ),
    # --- the buyer agent (reference_buyer/cli.py, covered by the root handler) ---
    Case(
        "buyer-port-out-of-range",
        ("buyer", "serve", "--data-dir", "b1", "--port", "70000"),
        1,
        or_usage=True,
    ),
    Case(
        "buyer-read-only-store",
        ("buyer", "history", "--data-dir", "readonly"),
        1,
        read_only=True,
        or_usage=True,
    ),
    Case(
        "buyer-garbage-store",
        ("buyer", "history", "--data-dir", "buyer-garbage-store"),
        1,
        or_usage=True,
    ),
    Case(
        "buyer-garbage-policy-toml",
        ("buyer", "offers", "--data-dir", "b2", "--policy", "garbage.toml"),
        1,
        or_usage=True,
    ),
    Case(
        "buyer-garbage-policy-json",
        ("buyer", "offers", "--data-dir", "b2", "--policy", "garbage.json"),
        1,
        or_usage=True,
    ),
    Case(
        "buyer-paper-garbage-json",
        ("buyer", "paper", "--data-dir", "b3", "--letter", "x", "http://v.example", "garbage.json"),
        1,
        or_usage=True,
    ),
    Case(
        "buyer-paper-directory",
        ("buyer", "paper", "--data-dir", "b3", "--letter", "x", "http://v.example", "adir"),
        2,
        "adir",
    ),
    Case("buyer-data-dir-is-a-file", ("buyer", "offers", "--data-dir", "good.jwk"), 2, "good.jwk"),
    Case(
        "buyer-accept-unknown-offer",
        ("buyer", "accept", "--data-dir", "b4", "nosuch"),
        1,
    ),
    # --- the conformance suite (conformance/cli.py) ---
    Case(
        "conformance-target-not-a-url",
        ("conformance", "run", "--role", "vendor", "--target", "notaurl"),
        2,
        "notaurl",
    ),
    Case(
        "conformance-target-port-out-of-range",
        ("conformance", "run", "--role", "vendor", "--target", "http://127.0.0.1:70000"),
        2,
        "70000",
    ),
    Case(
        "conformance-garbage-issuer-key",
        (
            "conformance",
            "run",
            "--role",
            "vendor",
            "--target",
            "http://127.0.0.1:9",
            "--issuer-key",
            "garbage.json",
        ),
        1,
        "garbage.json",
    ),
    Case(
        "conformance-out-read-only",
        (
            "conformance",
            "run",
            "--role",
            "vendor",
            "--target",
            "http://127.0.0.1:9",
            "--out",
            "readonly/results",
        ),
        1,
        "readonly",
        True,
    ),
    Case(
        "conformance-out-is-a-file",
        ("conformance", "run", "--role", "vendor", "--target", "http://x.example", "--out", "e"),
        2,
    ),
    Case(
        "conformance-garbage-baseline",
        (
            "conformance",
            "run",
            "--role",
            "vendor",
            "--target",
            "http://127.0.0.1:9",
            "--baseline",
            "garbage.json",
        ),
        2,
        "garbage.json",
    ),
    Case(
        "conformance-issuer-garbage-key",
        ("conformance", "issuer", "--key-file", "garbage.json"),
        1,
        "garbage.json",
    ),
    Case(
        "conformance-issuer-a-plain-jwk",
        ("conformance", "issuer", "--key-file", "good.jwk"),
        1,
        "good.jwk",
    ),
    Case(
        "conformance-issuer-read-only",
        ("conformance", "issuer", "--key-file", "readonly/issuer.jwk"),
        1,
        "readonly",
        True,
    ),
    Case(
        "conformance-state-dir-is-a-file",
        ("conformance", "issuer", "--state-dir", "good.jwk"),
        2,
        "good.jwk",
    ),
    Case("conformance-list-bad-role", ("conformance", "list", "--role", "seller"), 2, "seller"),
    # --- the demo ---
    Case("demo-out-is-a-file", ("demo", "--out", "good.jwk"), 2, "good.jwk"),
    Case("demo-out-read-only", ("demo", "--out", "readonly/demo"), 1, "readonly", True),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding every bad input of the table (and a few good ones)."""
    root = tmp_path_factory.mktemp("cli-errors")
    sally = PairwiseIdentity.generate()
    private = sally.signing_key.to_private_jwk()
    public = sally.signing_key.public().to_jwk()
    (root / "good.jwk").write_text(json.dumps(private))
    (root / "public.jwk").write_text(json.dumps(public))
    (root / "oct.jwk").write_text(json.dumps({"kty": "oct", "k": "c2VjcmV0LWtleQ"}))
    (root / "garbage.jwk").write_text("this is not a key\n")
    (root / "empty.jwk").write_text("")
    (root / "list.jwk").write_text("[1, 2, 3]\n")
    (root / "garbage.json").write_text("{not json\n")
    (root / "garbage.toml").write_text("policy = = yes\n")
    (root / "e").write_text("a file where a directory is expected\n")
    payload = json.loads(EXAMPLE.read_text("utf-8"))
    payload["from"] = sally.identifier
    (root / "payload.json").write_text(json.dumps(payload))
    (root / "msg.jws").write_bytes(encode(payload, sally.signing_key) + b"\n")
    (root / "adir").mkdir()
    for name, content in {
        "vendor-empty-key": "",
        "vendor-garbage-key": "garbage\n",
        "vendor-oct-key": json.dumps({"kty": "oct", "k": "c2VjcmV0LWtleQ"}),
        "vendor-public-key": json.dumps(public),
    }.items():
        (root / name).mkdir(mode=0o700)
        (root / name / "vendor-signing-key.jwk").write_text(content)
    (root / "vendor-garbage-store").mkdir(mode=0o700)
    (root / "vendor-garbage-store" / "vendor.sqlite3").write_bytes(b"not a database" * 100)
    (root / "buyer-garbage-store").mkdir(mode=0o700)
    (root / "buyer-garbage-store" / "buyer.sqlite3").write_bytes(b"not a database" * 100)
    (root / "readonly").mkdir()
    (root / "readonly").chmod(0o555)
    yield root
    (root / "readonly").chmod(0o755)


def run_vrm(argv: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``vrm ARGV`` as a user runs it, with the suite's state kept under ``cwd``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VRM_")}
    environment["XDG_STATE_HOME"] = str(cwd / "state")
    environment["COLUMNS"] = "200"  # one error line stays one line, however long
    return subprocess.run(
        [*AS_A_USER, str(VRM), *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_ends_with_one_line(case: Case, workspace: Path) -> None:
    if case.read_only and NEEDS_A_USER:
        pytest.skip("running as root without setpriv: a read-only directory is writable here")
    assert VRM.exists(), f"the vrm entry point is not installed beside {sys.executable}"
    try:
        result = run_vrm(case.argv, workspace)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`vrm {' '.join(case.argv)}` did not end: it should refuse the input")
    shown = f"`vrm {' '.join(case.argv)}` exited {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    allowed = {case.exit_code, 2} if case.or_usage else {case.exit_code}
    assert result.returncode in allowed, shown
    lines = error_lines(result.stderr)
    if result.returncode == 2:
        # click's usage errors stay click's: usage text, then exactly one Error: line.
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) == 1, shown
        assert lines[-1] == errors[0], shown
        line = errors[0]
    else:
        assert len(lines) == 1, shown
        line = lines[0]
    assert case.mentions in line, shown


# --- a genuine bug: one line that says how to see the traceback ---


@click.command("explode")
def _explode() -> None:
    """A command with a bug (test only)."""
    raise RuntimeError("a bug in a command")


@pytest.fixture
def buggy_vrm() -> Iterator[click.Group]:
    vrm_cli.cli.add_command(_explode)
    try:
        yield vrm_cli.cli
    finally:
        vrm_cli.cli.commands.pop("explode")


def test_a_bug_says_how_to_see_its_traceback(
    buggy_vrm: click.Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VRM_DEBUG", raising=False)
    result = CliRunner().invoke(buggy_vrm, ["explode"])
    assert result.exit_code == vrm_cli.EXIT_BUG
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "RuntimeError: a bug in a command" in lines[0]
    assert "--debug" in lines[0]
    assert "VRM_DEBUG=1" in lines[0]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback(
    how: str, buggy_vrm: click.Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VRM_DEBUG", raising=False)
    if how == "environment":
        monkeypatch.setenv("VRM_DEBUG", "1")
    arguments = ["--debug", "explode"] if how == "flag" else ["explode"]
    result = CliRunner().invoke(buggy_vrm, arguments)
    # The exception escapes to the interpreter, which prints the traceback.
    assert isinstance(result.exception, RuntimeError)


def test_debug_shows_the_traceback_of_a_user_error_too(workspace: Path) -> None:
    """--debug is for finding out why: the user error's traceback is shown as well."""
    result = run_vrm(("--debug", "sign", "payload.json", "--key", "oct.jwk"), workspace)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_keys_new_writes_a_whole_private_file_and_nothing_else(tmp_path: Path) -> None:
    """The key file is 0600 whatever the umask, and no temporary file is left beside it."""
    result = subprocess.run(
        ["sh", "-c", f'umask 000 && exec "{VRM}" keys new --pairwise -o sally.jwk'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["sally.jwk"]
    assert (tmp_path / "sally.jwk").stat().st_mode & 0o777 == 0o600
    assert PairwiseIdentity.from_private_jwk(json.loads((tmp_path / "sally.jwk").read_text()))
    assert result.stderr.startswith("identifier: did:jwk:")
