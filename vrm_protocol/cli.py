"""The ``vrm`` command: the composition root of the project.

Library commands (``validate``, ``sign``, ``verify``, ``keys``, ``schemas``)
live here.  The agents', the suite's and the spec builder's command groups are
imported lazily so that ``vrm validate`` does not load aiohttp, and so that the
library modules never import the packages built on top of them.

Exit codes: 0 success; 1 a checked thing is invalid (a message, a signature,
a stale generated file); 2 usage errors (click's own).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import click

from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError

__all__ = ["main"]


class _LazyGroup(click.Group):
    """A group whose sub-groups are imported only when invoked."""

    lazy_commands: ClassVar[dict[str, tuple[str, str, str]]] = {
        "vendor": ("reference_vendor.cli", "vendor", "Run the reference vendor agent."),
        "buyer": ("reference_buyer.cli", "buyer", "Run the reference buyer agent."),
        "conformance": ("conformance.cli", "conformance", "Run the conformance suite."),
        "demo": ("reference_buyer.journey", "demo", "Run Sally's car-buying journey end to end."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            import importlib

            module_name, attribute, _ = self.lazy_commands[cmd_name]
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Describe lazy commands without importing them, so `vrm --help` stays fast.
        rows = [(name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items())]
        rows += [(name, spec[2]) for name, spec in self.lazy_commands.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_LazyGroup)
@click.version_option(package_name="vrm-protocol")
def cli() -> None:
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


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
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
                expected_code = None if expected.get("valid") else expected.get("error")
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
        _fail(f"{failures} of {len(files)} file(s) failed")
        sys.exit(1)


@cli.command()
@click.argument("payload", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Private JWK file (from `vrm keys new`).",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the JWS here.")
def sign(payload: Path, key_file: Path, output: Path | None) -> None:
    """Sign a message payload as a compact JWS under the signing profile."""
    from vrm_protocol.codec import encode
    from vrm_protocol.keys import SigningKey

    try:
        key = SigningKey.from_private_jwk(json.loads(key_file.read_text()))
        token = encode(_load_json_strict(payload), key)
    except ProtocolError as error:
        _fail(f"{payload}: {_describe(error)}")
        sys.exit(1)
    if output is None:
        click.echo(token.decode())
    else:
        output.write_bytes(token + b"\n")


@cli.command()
@click.argument("token_file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, path_type=Path),
    help="JWKS of the sender (not needed for did:jwk senders).",
)
@click.option("--audience", help="Our identifier: require it in the envelope's `to`.")
@click.option("--at", "at_time", help="Judge freshness at this RFC 3339 time instead of now.")
def verify(
    token_file: Path, jwks_file: Path | None, audience: str | None, at_time: str | None
) -> None:
    """Verify a signed message and print its payload."""
    from vrm_protocol.codec import decode
    from vrm_protocol.freshness import parse_timestamp
    from vrm_protocol.keys import KeySet, key_resolver

    try:
        key_set = KeySet.from_jwks(json.loads(jwks_file.read_text())) if jwks_file else None
        now = parse_timestamp(at_time) if at_time else datetime.now(UTC)
        received = decode(
            token_file.read_bytes().strip(),
            resolve_key=key_resolver(key_set),
            receiver=audience,
            now=now,
        )
    except ProtocolError as error:
        _fail(f"{token_file}: {_describe(error)}")
        sys.exit(1)
    click.echo(json.dumps(dict(received.payload), indent=2, ensure_ascii=False))


@cli.group()
def keys() -> None:
    """Generate and inspect keys."""


@keys.command("new")
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True)
@click.option("--pairwise", is_flag=True, help="A buyer's pairwise pseudonym (did:jwk, Ed25519).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Private JWK file to create (mode 0600).",
)
def keys_new(alg: str, pairwise: bool, output: Path) -> None:
    """Create a private key; print its public JWK (and identifier for --pairwise)."""
    from vrm_protocol.keys import PairwiseIdentity, SigningKey

    if pairwise:
        identity = PairwiseIdentity.generate()
        key = identity.signing_key
        click.echo(f"identifier: {identity.identifier}", err=True)
    else:
        key = SigningKey.generate(alg)
    # Create with 0600 from the start: a private key is never world-readable,
    # not even for the instant between creating the file and chmod.
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(key.to_private_jwk(), handle, indent=2)
    click.echo(json.dumps(key.public().to_jwk(), indent=2))


@cli.group()
def schemas() -> None:
    """Keep the generated models in step with the normative schemas."""


@schemas.command("generate")
@click.option("--check", is_flag=True, help="Fail (exit 1) if the generated models are stale.")
def schemas_generate(check: bool) -> None:
    """Regenerate vrm_protocol/models/_generated.py from schemas/."""
    from vrm_protocol.codegen import main_generate

    sys.exit(main_generate(check=check))


@cli.group()
def spec() -> None:
    """Build the specification from its sources."""


@spec.command("build")
@click.option("--check", is_flag=True, help="Fail (exit 1) if spec/ is stale.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Repository root.",
)
def spec_build(check: bool, root: Path) -> None:
    """Regenerate spec/ (HTML, Markdown, OpenAPI) from schemas, registries and prose."""
    from conformance.catalog import traceability
    from vrm_protocol.specgen import main_build

    sys.exit(main_build(root, traceability=traceability(), check=check))


def main() -> None:
    """Entry point of the ``vrm`` console script."""
    cli()


if __name__ == "__main__":
    main()
