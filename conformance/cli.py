"""``vrm conformance``: run the suite, list its checks, manage its test issuer and vectors.

Exit codes of ``run`` (see :class:`conformance.results.ExitCode`): 0 every
selected check passed or warned; 1 a check failed; 2 usage error; 3 harness
error; 4 no check ran; 5 stale baseline entry under ``--strict-baseline``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console

from conformance.model import ALL_STEPS, Level
from vrm_protocol.vocabulary import Role

__all__ = ["conformance"]


@click.group()
def conformance() -> None:
    """Judge a buyer or vendor agent by what it puts on the wire."""


def _patterns(values: Sequence[str], files: Sequence[Path]) -> tuple[str, ...]:
    from conformance.selection import read_id_list

    entries = [item for value in values for item in value.split(",") if item.strip()]
    for path in files:
        entries.extend(read_id_list(path))
    return tuple(entry.strip() for entry in entries)


@conformance.command("run")
@click.option(
    "--role",
    type=click.Choice(["vendor", "buyer"]),
    required=True,
    help="The role of the TARGET: the suite plays the other side.",
)
@click.option("--target", required=True, help="Base URL of the agent under test.")
@click.option(
    "--step",
    "steps",
    multiple=True,
    type=click.Choice(ALL_STEPS),
    help="Only checks of this lifecycle step (repeatable).",
)
@click.option(
    "--level",
    "levels",
    multiple=True,
    type=click.Choice([lv.value for lv in Level]),
    help="Only checks of this requirement level (repeatable).",
)
@click.option(
    "--check",
    "include",
    multiple=True,
    help="Only these check ids; shell patterns and comma lists allowed (repeatable).",
)
@click.option("--exclude", multiple=True, help="Leave out these check ids (patterns; repeatable).")
@click.option(
    "--include-file",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="File of check ids/patterns to run, one a line.",
)
@click.option(
    "--exclude-file",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="File of check ids/patterns to leave out, one a line.",
)
@click.option(
    "--requirement",
    "requirements",
    multiple=True,
    help="Only checks citing these requirement ids (patterns; repeatable).",
)
@click.option(
    "--baseline",
    type=click.Path(exists=True, path_type=Path),
    help="Expected-failures baseline (JSON).",
)
@click.option(
    "--strict-baseline", is_flag=True, help="Fail the run (exit 5) when a baseline entry is stale."
)
@click.option(
    "--write-baseline",
    type=click.Path(path_type=Path),
    help="Write this run's failures as a baseline file.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("conformance-results"),
    show_default=True,
    help="Directory for result.json (with the full transcript), junit.xml, report.html.",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="JSON result file path.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="JUnit XML path.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="HTML report path.")
@click.option(
    "--reply-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for a message the target owes.",
)
@click.option(
    "--operator-timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds an operator has to act for a buyer without a test driver.",
)
@click.option(
    "--max-real-wait",
    type=float,
    default=3600.0,
    show_default=True,
    help="Longest real wait for time to pass on a target without a test driver.",
)
@click.option(
    "--run-timeout",
    type=float,
    help="Seconds the whole run may take (checks left then are harness errors).",
)
@click.option(
    "--restart-command",
    help="Shell command that restarts the target (enables replay-after-restart checks).",
)
@click.option(
    "--issuer-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".vrm-conformance/issuer.jwk"),
    show_default=True,
    help="Private JWK of the suite's test credit-union issuer (created if missing).",
)
@click.option(
    "--vendors",
    "vendor_count",
    type=click.IntRange(2, 10),
    default=3,
    show_default=True,
    help="How many vendors the suite plays against a buyer.",
)
@click.option("--verbose", "-v", is_flag=True, help="Print the reason of every verdict.")
@click.option("--quiet", "-q", is_flag=True, help="No live view; print the summary only.")
def run_command(
    role: str,
    target: str,
    steps: Sequence[str],
    levels: Sequence[str],
    include: Sequence[str],
    exclude: Sequence[str],
    include_file: Sequence[Path],
    exclude_file: Sequence[Path],
    requirements: Sequence[str],
    baseline: Path | None,
    strict_baseline: bool,
    write_baseline: Path | None,
    out_dir: Path,
    json_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
    reply_timeout: float,
    operator_timeout: float,
    max_real_wait: float,
    run_timeout: float | None,
    restart_command: str | None,
    issuer_key: Path,
    vendor_count: int,
    verbose: bool,
    quiet: bool,
) -> None:
    """Run the suite against the agent at --target."""
    from conformance.baseline import Baseline
    from conformance.context import RunOptions
    from conformance.operator import ConsoleOperator
    from conformance.reports import LiveProgress, write_html, write_json, write_junit
    from conformance.runner import run_suite
    from conformance.selection import Selection

    console = Console(stderr=True)
    selection = Selection(
        steps=frozenset(steps),
        levels=frozenset(Level(level) for level in levels),
        include=_patterns(include, include_file),
        exclude=_patterns(exclude, exclude_file),
        requirements=_patterns(requirements, ()),
    )
    try:
        expected_failures = Baseline.load(baseline) if baseline else None
    except (OSError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    options = RunOptions(
        role=Role(role),
        target=target.rstrip("/"),
        reply_timeout=reply_timeout,
        operator_timeout=operator_timeout,
        max_real_wait=max_real_wait,
        run_timeout=run_timeout,
        restart_command=restart_command,
        issuer_key_file=str(issuer_key),
        vendor_count=vendor_count,
    )
    from conformance.catalog import default_registry

    for pattern in selection.unmatched_patterns(default_registry()):
        console.print(f"[yellow]warning:[/yellow] pattern {pattern!r} matches no check")
    listener = None if quiet else LiveProgress(console, verbose=verbose)
    run = asyncio.run(
        run_suite(
            options,
            selection=selection,
            baseline=expected_failures,
            listener=listener,
            operator=ConsoleOperator(console),
        )
    )
    json_file = json_path or out_dir / "result.json"
    junit_file = junit_path or out_dir / "junit.xml"
    html_file = html_path or out_dir / "report.html"
    write_json(run, json_file)
    write_junit(run, junit_file)
    write_html(run, html_file)
    if write_baseline is not None:
        write_baseline.parent.mkdir(parents=True, exist_ok=True)
        write_baseline.write_text(
            json.dumps(Baseline.from_failures(run).to_json(), indent=2) + "\n", "utf-8"
        )
    code = run.exit_code(strict_baseline=strict_baseline)
    if quiet:
        counts = run.counts()
        click.echo(" ".join(f"{name}={value}" for name, value in counts.items()))
    console.print(f"results: {json_file}  junit: {junit_file}  html: {html_file}")
    sys.exit(int(code))


@conformance.command("list")
@click.option("--role", type=click.Choice(["vendor", "buyer"]), help="Only checks for this role.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def list_command(role: str | None, as_json: bool) -> None:
    """List the checks, the step they belong to and the requirements they cite."""
    from conformance.catalog import all_checks
    from conformance.model import step_rank

    checks = sorted(
        (info for info in all_checks().values() if role is None or role in info["roles"]),
        key=lambda info: (info["audit"], step_rank(info["step"]), info["id"]),
    )
    if as_json:
        click.echo(json.dumps(checks, indent=2))
        return
    for info in checks:
        click.echo(
            f"{info['id']:<34} {info['step']:<14} {info['level']:<6} "
            f"{','.join(info['roles']):<12} {' '.join(info['requirements'])}"
        )


@conformance.command("coverage")
def coverage_command() -> None:
    """Print MUST requirements with no check and no waiver, and unknown citations.

    Exits 1 when there is any gap (the CI coverage gate).
    """
    from conformance.catalog import coverage_gaps, requirements_index, traceability, waivers

    gaps = coverage_gaps()
    for gap in gaps:
        click.echo(gap.describe())
    if gaps:
        sys.exit(1)
    musts = [r for r in requirements_index().values() if r.level is Level.MUST]
    cited = traceability()
    click.echo(
        f"no gaps: {sum(1 for r in musts if r.id in cited)} of {len(musts)} MUST requirements "
        f"checked, {len(waivers())} waived; {len(cited)} requirements cited in all"
    )


@conformance.command("issuer")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".vrm-conformance/issuer.jwk"),
    show_default=True,
    help="Private JWK of the test issuer; created if missing.",
)
@click.option(
    "--jwks-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the issuer's public JWKS here (for the target's configuration).",
)
@click.option(
    "--out",
    "document_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the printed document ({issuer, jwks}) here.",
)
def issuer_command(key_file: Path, jwks_out: Path | None, document_out: Path | None) -> None:
    """Print the suite's test credit-union issuer: its id and public JWKS.

    A vendor under test must trust this issuer for the attestation checks:
    configure its JWKS (and id) in the vendor before running the suite.
    """
    from conformance.peers.issuer import TestIssuer

    issuer = TestIssuer.load_or_create(key_file)
    jwks = issuer.jwks()
    if jwks_out is not None:
        jwks_out.parent.mkdir(parents=True, exist_ok=True)
        jwks_out.write_text(json.dumps(jwks, indent=2) + "\n", "utf-8")
    document = json.dumps({"issuer": issuer.issuer_id, "jwks": jwks}, indent=2)
    if document_out is not None:
        document_out.parent.mkdir(parents=True, exist_ok=True)
        document_out.write_text(document + "\n", "utf-8")
    click.echo(document)


@conformance.command("vectors")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Fail (exit 1) if conformance/vectors/index.json is stale.",
)
@click.option(
    "--run",
    "run_them",
    is_flag=True,
    help="Run every vector through the library and fail (exit 1) on any wrong conclusion.",
)
def vectors_command(check_only: bool, run_them: bool) -> None:
    """Rebuild the catalogue of test vectors (conformance/vectors/index.json), or run them."""
    from conformance.vectors_index import INDEX_PATH, build_index, render_index, run_vectors

    if run_them:
        outcomes = run_vectors()
        failed = [outcome for outcome in outcomes if not outcome.passed]
        for outcome in failed:
            click.echo(f"FAIL {outcome.id} ({outcome.path}): {outcome.detail}", err=True)
        click.echo(f"{len(outcomes) - len(failed)} of {len(outcomes)} vector(s) passed")
        if failed or not outcomes:
            sys.exit(1)
        return
    rendered = render_index(build_index())
    current = INDEX_PATH.read_text("utf-8") if INDEX_PATH.exists() else ""
    if check_only:
        if current != rendered:
            click.echo(f"{INDEX_PATH} is stale: run `vrm conformance vectors`", err=True)
            sys.exit(1)
        return
    INDEX_PATH.write_text(rendered, "utf-8")
    click.echo(f"wrote {INDEX_PATH}")
