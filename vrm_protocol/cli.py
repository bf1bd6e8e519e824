"""The ``vrm`` command: the composition root of the project.

Library commands (``validate``, ``sign``, ``verify``, ``keys``) live here.
The packages built on the library add their command groups through the
``vrm.commands`` entry points (``vendor``, ``buyer``, ``demo`` with the
``agents`` extra, ``conformance`` with the ``conformance`` extra): the library
names none of them, and a group is imported only when it runs, so that
``vrm validate`` does not load aiohttp. The build tools are not commands of
``vrm``: they run from a checkout (``python -m tools.codegen``,
``python -m tools.specgen``).

Exit codes: 0 success; 1 a checked thing is invalid (a message, a signature,
a stale generated file) or the input is unusable (a key file that is not a
key, a file that exists, a read-only store: one line on stderr says what is
wrong and what to do); 2 usage errors (click's own); 70 a bug in ``vrm``
(one line; ``vrm --debug`` or ``VRM_DEBUG=1`` shows its traceback).

Every command of every group, the agents' included, runs inside the root
group's error boundary (:meth:`_RootGroup.invoke`): the user sees one line,
never a traceback, for anything that is not a bug.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import click

from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from vrm_protocol.keys import KeySet, SigningKey

__all__ = ["EXIT_BUG", "EXIT_USAGE", "EXIT_USER_ERROR", "describe_user_error", "main"]

#: The input cannot be used (one line on stderr says what is wrong and what to do).
EXIT_USER_ERROR: Final = 1
#: click's usage errors (an unknown option, a bad option value).
EXIT_USAGE: Final = 2
#: A bug in vrm (sysexits.h EX_SOFTWARE): not the user's fault, worth a report.
EXIT_BUG: Final = 70
#: Set to ``1`` to see the traceback of any error (as ``vrm --debug``).
DEBUG_ENVIRONMENT_VARIABLE: Final = "VRM_DEBUG"


class UserError(click.ClickException):
    """An input the user can correct: shown as one ``Error:`` line, exit 1."""

    exit_code = EXIT_USER_ERROR


class BugError(click.ClickException):
    """An exception no input should cause: one line saying how to see the traceback."""

    exit_code = EXIT_BUG


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _os_error_message(error: OSError) -> str:
    """What went wrong with a file or a connection, and what to do about it."""
    import urllib.error

    if isinstance(error, urllib.error.URLError):
        reason = getattr(error.reason, "strerror", None) or error.reason
        return f"cannot reach the agent: {reason}: check the URL and that the agent is running"
    name = os.fsdecode(error.filename) if error.filename is not None else None
    where = f"{name}: " if name else ""
    if isinstance(error, FileExistsError):
        return f"{name} already exists: choose another path, or move the file away first"
    if isinstance(error, IsADirectoryError):
        return f"{name} is a directory: give the path of a file"
    if isinstance(error, NotADirectoryError):
        return f"{name}: part of this path is not a directory: give a path inside a directory"
    if isinstance(error, FileNotFoundError):
        return f"{name} does not exist: check the path (create its directory first)"
    if isinstance(error, PermissionError):
        return (
            f"{where}permission denied: check the owner and mode of the file and its "
            "directory, or choose a place you may write"
        )
    if error.errno == errno.EROFS:
        return f"{where}read-only file system: choose a writable place"
    if error.errno == errno.ENOSPC:
        return f"{where}no space left on the device: free some space and try again"
    if isinstance(error, TimeoutError):
        return f"{where}timed out: check that the other side is reachable, then try again"
    return f"{where}{error.strerror or error}"


def describe_user_error(error: BaseException) -> str | None:
    """One line saying what is wrong with the user's input and what to do; ``None`` for a bug.

    The project's user errors are: protocol errors (a message or token refused),
    unusable keys and configuration (``ValueError`` and its kin: JSON and TOML
    decode errors, :class:`~vrm_protocol.keys.InvalidKeyError`), files and
    connections (``OSError``: exists, is a directory, permission, read-only),
    a store that cannot be opened or written (SQLite), and numbers out of range
    (a port of 70000).
    """
    import sqlite3
    import tomllib

    if isinstance(error, ProtocolError):
        return _one_line(_describe(error))
    if isinstance(error, OSError):
        return _one_line(_os_error_message(error))
    if isinstance(error, sqlite3.OperationalError) or type(error) is sqlite3.DatabaseError:
        # "unable to open database file", "attempt to write a readonly database",
        # "file is not a database", "database is locked": the store, not the code.
        return _one_line(
            f"the store cannot be used ({error}): check that the data directory is yours "
            "and writable, holds this agent's files, and is not used by another agent"
        )
    if isinstance(error, json.JSONDecodeError):
        if not error.doc.strip():
            return "a file that must hold JSON is empty: check the file given (or restore it)"
        return _one_line(
            f"not valid JSON ({error.msg}, line {error.lineno} column {error.colno}): "
            "check the JSON file given"
        )
    if isinstance(error, tomllib.TOMLDecodeError):
        return _one_line(f"not valid TOML ({error}): check the TOML file given")
    if isinstance(error, UnicodeDecodeError):
        return "a file is not UTF-8 text: check the file given"
    from vrm_protocol.keys import InvalidKeyError

    if isinstance(error, InvalidKeyError):
        return _one_line(
            f"unusable key ({error}): a key file holds a private JWK (Ed25519 or P-256) "
            "as `vrm keys new` writes it"
        )
    if isinstance(error, OverflowError):
        return _one_line(f"a value is out of range: {error}")
    if isinstance(error, ValueError):
        return _one_line(str(error)) or type(error).__name__
    return None


def _debugging(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get(DEBUG_ENVIRONMENT_VARIABLE) == "1"


#: What installs every command group of ``vrm``.
_ALL_EXTRAS: Final = "vrm-protocol[agents,conformance]"


class _RootGroup(click.Group):
    """The ``vrm`` group: sub-groups found through entry points, and the error boundary."""

    entry_point_group: ClassVar[str] = "vrm.commands"

    @classmethod
    def _entry_points(cls) -> dict[str, importlib.metadata.EntryPoint]:
        return {
            entry.name: entry
            for entry in importlib.metadata.entry_points(group=cls.entry_point_group)
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self._entry_points().get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        try:
            command = entry.load()
        except ImportError as error:
            raise UserError(
                f"`vrm {cmd_name}` needs a part of vrm-protocol that is not installed "
                f"({error.name or error}): pip install '{_ALL_EXTRAS}'"
            ) from error
        if not isinstance(command, click.Command):
            raise BugError(f"the entry point {entry.value} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items())]
        for name, entry in sorted(self._entry_points().items()):
            try:
                command = entry.load()
            except ImportError:
                rows.append(
                    (name, "(not installed: pip install 'vrm-protocol[agents,conformance]')")
                )
            else:
                if isinstance(command, click.Command):
                    rows.append((name, command.get_short_help_str()))
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn anything but click's own exceptions into one line.

        Every subcommand, the agents' and the suite's included, runs inside this
        call, so this is the one place where a Python exception meets the user
        (issue 9: "every user error ends with one line saying what is wrong and
        what to do, and a non-zero exit"). Under ``--debug`` or ``VRM_DEBUG=1``
        nothing is translated and Python prints the traceback.

        Raises:
            click.ClickException: :class:`UserError` (exit 1) for the user's
                errors, :class:`BugError` (exit 70) for anything else.
        """
        try:
            return super().invoke(ctx)
        except UserError as error:
            if _debugging(ctx):
                # A command's own one-line refusal: show how it came about as well.
                import traceback

                traceback.print_exception(error, file=sys.stderr)
            raise
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (EOFError, BrokenPipeError):
            raise  # click's own handling: "Aborted!" and a quiet exit on a closed pipe
        except Exception as error:
            if _debugging(ctx):
                raise
            message = describe_user_error(error)
            if message is not None:
                raise UserError(message) from error
            raise BugError(
                _one_line(
                    f"internal error, a bug in vrm: {type(error).__name__}: {error} "
                    "(rerun with `vrm --debug ...` or VRM_DEBUG=1 to see the traceback, "
                    "and report it)"
                )
            ) from error


@click.group(cls=_RootGroup)
@click.version_option(package_name="vrm-protocol")
@click.option(
    "--debug",
    is_flag=True,
    help=f"Show tracebacks instead of one-line errors (also {DEBUG_ENVIRONMENT_VARIABLE}=1).",
)
def cli(debug: bool) -> None:
    """Reference implementation of the VRM/CRM protocol."""


def _fail(message: str) -> None:
    click.echo(message, err=True)


def _load_json_strict(path: Path) -> Any:
    """Parse JSON refusing duplicate members (the profile refuses them on the wire too)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise RemoteProtocolError(
                    ErrorCode.DUPLICATE_MEMBER, f"member {key!r} appears more than once"
                )
            result[key] = value
        return result

    try:
        return json.loads(path.read_bytes(), object_pairs_hook=no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JSON, str(exc)) from exc


def _describe(error: ProtocolError) -> str:
    where = f" at {error.path}" if error.path else ""
    return f"{error.code.value}{where}: {error.detail}"


def _load_private_key(path: Path) -> SigningKey:
    """The private key in ``path`` (a JWK file from ``vrm keys new``).

    Raises:
        UserError: the file is empty, not JSON, a public key only, or not a key
            this profile signs with (e.g. a symmetric ``oct`` key).
    """
    from vrm_protocol.keys import SigningKey

    advice = "give a private key file made by `vrm keys new -o FILE`"
    text = path.read_bytes()
    if not text.strip():
        raise UserError(f"{path} is empty: {advice}")
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(_one_line(f"{path} is not a JWK (not JSON: {error}): {advice}")) from error
    if not isinstance(document, dict):
        raise UserError(f"{path} is not a JWK (a JWK is a JSON object): {advice}")
    if "d" not in document and document.get("kty") in ("OKP", "EC"):
        raise UserError(f"{path} holds a public key only: signing needs the private key; {advice}")
    try:
        return SigningKey.from_private_jwk(document)
    except ValueError as error:  # InvalidKeyError: oct, RSA, a mismatched key...
        raise UserError(
            _one_line(f"{path} is not a usable signing key ({error}): {advice}")
        ) from error


def _write_new_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, mode 0600, atomically; never replace a file.

    The bytes go to a temporary file in the same directory, created 0600 and
    fsynced; a hard link then gives it its name (which fails if the name is
    taken, so an existing key is never overwritten) and the directory is fsynced.
    A crash leaves either no file or the whole key, never an empty key file
    (decision D10: "Key files are written atomically").

    Raises:
        FileExistsError: ``path`` exists.
        OSError: the directory cannot be written.
    """
    directory = path.parent
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=directory, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        # Name the file the user asked for, not the temporary one.
        raise type(error)(error.errno, error.strerror, os.fspath(path)) from error
    try:
        with os.fdopen(descriptor, "wb") as handle:
            # Explicit: 0600 whatever the umask (a private key is never readable by others).
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        os.unlink(temporary)
    directory_descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)


class _Timestamp(click.ParamType):  # type: ignore[type-arg]
    """An RFC 3339 protocol timestamp (``2027-01-12T09:00:00Z``), refused as a usage error."""

    name = "timestamp"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from vrm_protocol.freshness import parse_timestamp

        if isinstance(value, datetime):
            return value
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError):
            self.fail(f"{value!r} is not a UTC time of the form 2027-01-12T09:00:00Z", param, ctx)


#: An existing regular file (a directory is a usage error, not a traceback).
_IN_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=_IN_FILE)
@click.option("--quiet", "-q", is_flag=True, help="Print only failures.")
def validate(files: Sequence[Path], quiet: bool) -> None:
    """Validate message payloads (JSON) against the normative schemas and the models.

    A file holding a conformance vector ({"payload": ..., "expected": ...}) is
    validated on its payload and judged against its expected result.
    """
    from vrm_protocol.models import parse_message_dict
    from vrm_protocol.schema_registry import default_registry

    registry = default_registry()
    failures = 0
    for path in files:
        expected_code: str | None = None
        try:
            document = _load_json_strict(path)
            if isinstance(document, dict) and {"payload", "expected"} <= document.keys():
                expected = document["expected"]
                valid = isinstance(expected, dict) and bool(expected.get("valid"))
                expected_code = None if valid else dict(expected or {}).get("error")
                document = document["payload"]
            registry.validate_message(document)
            parse_message_dict(document)
            outcome: str | None = None
        except ProtocolError as error:
            outcome = error.code.value
            detail = _describe(error)
        else:
            detail = "valid"
        if outcome == expected_code:
            if not quiet:
                verdict = "valid" if outcome is None else f"invalid as expected ({detail})"
                click.echo(f"{path}: {verdict}")
        else:
            failures += 1
            wanted = "valid" if expected_code is None else expected_code
            _fail(f"{path}: expected {wanted}, got {detail}")
    if failures:
        # One file: its line already says it all (one line per error).
        if len(files) > 1:
            _fail(f"{failures} of {len(files)} file(s) failed")
        sys.exit(1)


@cli.command()
@click.argument("payload", type=_IN_FILE)
@click.option(
    "--key",
    "key_file",
    required=True,
    type=_IN_FILE,
    help="Private JWK file (from `vrm keys new`).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JWS here.",
)
def sign(payload: Path, key_file: Path, output: Path | None) -> None:
    """Sign a message payload as a compact JWS under the signing profile.

    The payload's `from` must be the key's party: for a pairwise key (`vrm keys
    new --pairwise`), its did:jwk identifier.
    """
    from vrm_protocol.codec import encode

    key = _load_private_key(key_file)
    try:
        token = encode(_load_json_strict(payload), key)
    except ProtocolError as error:
        _fail(f"{payload}: {_describe(error)}")
        sys.exit(1)
    if output is None:
        click.echo(token.decode())
    else:
        output.write_bytes(token + b"\n")


@cli.command()
@click.argument("token_file", type=_IN_FILE, required=False)
@click.option(
    "--bundle",
    "bundle_file",
    type=_IN_FILE,
    help="Verify an evidence bundle (spec §6.32) offline instead of one message.",
)
@click.option(
    "--jwks",
    "jwks_file",
    type=_IN_FILE,
    help="JWKS of the sender (not needed for did:jwk senders).",
)
@click.option("--audience", help="Our identifier: require it in the envelope's `to`.")
@click.option(
    "--at",
    "at_time",
    type=_Timestamp(),
    help="Judge freshness at this UTC time (2027-01-12T09:00:00Z) instead of now.",
)
def verify(
    token_file: Path | None,
    bundle_file: Path | None,
    jwks_file: Path | None,
    audience: str | None,
    at_time: datetime | None,
) -> None:
    """Verify a signed message and print its payload, or an evidence bundle (--bundle)."""
    from vrm_protocol.codec import decode
    from vrm_protocol.keys import key_resolver

    if (token_file is None) == (bundle_file is None):
        raise click.UsageError("give either TOKEN_FILE or --bundle FILE")
    if bundle_file is not None:
        _verify_bundle(bundle_file)
        return
    assert token_file is not None
    key_set = _load_jwks(jwks_file) if jwks_file else None
    try:
        received = decode(
            token_file.read_bytes().strip(),
            resolve_key=key_resolver(key_set),
            receiver=audience,
            now=at_time or datetime.now(UTC),
        )
    except ProtocolError as error:
        _fail(f"{token_file}: {_describe(error)}")
        sys.exit(1)
    click.echo(json.dumps(dict(received.payload), indent=2, ensure_ascii=False))


def _verify_bundle(path: Path) -> None:
    """``vrm verify --bundle``: one line either way; exit 1 when the bundle does not hold."""
    from vrm_protocol.evidence import verify_bundle

    try:
        report = verify_bundle(_load_json_strict(path))
    except ProtocolError as error:
        _fail(f"{path}: {_describe(error)}")
        sys.exit(1)
    click.echo(
        f"{path}: verified: {report.count} messages of thread {report.thread} between "
        f"{' and '.join(report.parties)}, sealed by {report.sealed_by}; head {report.head}"
    )


def _load_jwks(path: Path) -> KeySet:
    """The sender's key set from a JWKS file.

    Raises:
        UserError: the file is not a JWKS this profile accepts.
    """
    from vrm_protocol.keys import KeySet

    advice = 'give the sender\'s JWKS ({"keys": [...]}, as it serves at /vrm/jwks.json)'
    try:
        return KeySet.from_jwks(json.loads(path.read_bytes()))
    except (ValueError, UnicodeDecodeError, ProtocolError) as error:
        raise UserError(_one_line(f"{path} is not a usable JWKS ({error}): {advice}")) from error


@cli.group()
def keys() -> None:
    """Generate and inspect keys."""


@keys.command("new")
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True)
@click.option("--pairwise", is_flag=True, help="A buyer's pairwise pseudonym (did:jwk, Ed25519).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Private JWK file to create (mode 0600; never overwritten).",
)
def keys_new(alg: str, pairwise: bool, output: Path) -> None:
    """Create a private key; print its public JWK (and identifier for --pairwise)."""
    from vrm_protocol.keys import PairwiseIdentity, SigningKey

    identifier: str | None = None
    if pairwise:
        identity = PairwiseIdentity.generate()
        key = identity.signing_key
        identifier = identity.identifier
    else:
        key = SigningKey.generate(alg)
    try:
        _write_new_private_file(
            output, json.dumps(key.to_private_jwk(), indent=2).encode("utf-8") + b"\n"
        )
    except FileExistsError as error:
        raise UserError(
            f"{output} already exists: a key file is never overwritten; "
            "choose another name, or move the old key away first"
        ) from error
    if identifier is not None:
        click.echo(f"identifier: {identifier}", err=True)
    click.echo(json.dumps(key.public().to_jwk(), indent=2))


def main() -> None:
    """Entry point of the ``vrm`` console script."""
    cli()


if __name__ == "__main__":
    main()
