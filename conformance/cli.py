"""``vrm conformance``: run the suite, list its checks, manage its test issuer and vectors.

Exit codes of ``run`` (see :class:`conformance.results.ExitCode`): 0 every
selected check passed or warned; 1 a check failed; 2 usage error; 3 harness
error; 4 no check ran; 5 stale baseline entry under ``--strict-baseline``.

The suite keeps what must outlive a run (the test issuer's private key, which
a target is configured to trust) in one place whatever the working directory:
its *state directory*, ``--state-dir``, else ``$VRM_CONFORMANCE_STATE_DIR``,
else ``$XDG_STATE_HOME/vrm-conformance``, else ``~/.local/state/vrm-conformance``.
Both ``run`` and ``issuer`` print where it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from rich.console import Console

from conformance.model import ALL_STEPS, Level
from vrm_protocol.vocabulary import Role

if TYPE_CHECKING:
    from conformance.peers.issuer import TestIssuer
    from conformance.selection import Selection

__all__ = ["STATE_DIR_ENVIRONMENT_VARIABLE", "conformance", "default_state_dir"]

#: Overrides the default state directory (as ``--state-dir`` does).
STATE_DIR_ENVIRONMENT_VARIABLE: Final = "VRM_CONFORMANCE_STATE_DIR"
#: The test issuer's private key, inside the state directory.
ISSUER_KEY_FILE: Final = "issuer.jwk"
#: Where versions before the state directory kept the issuer key (relative to
#: the working directory, so two directories meant two issuers).
LEGACY_ISSUER_KEY: Final = Path(".vrm-conformance") / ISSUER_KEY_FILE


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The suite's state directory when ``--state-dir`` is not given.

    ``$VRM_CONFORMANCE_STATE_DIR``, else ``$XDG_STATE_HOME/vrm-conformance``
    (the XDG Base Directory specification's place for state that should
    persist between runs but is not worth backing up), else
    ``~/.local/state/vrm-conformance``. A relative ``XDG_STATE_HOME`` is
    ignored, as that specification requires.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get(STATE_DIR_ENVIRONMENT_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    xdg = environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "vrm-conformance"


def _prepare_state_dir(state_dir: Path) -> Path:
    """Create the state directory (and missing parents) 0700; return it absolute.

    It holds a private key, so nobody else may list or enter it, whatever the
    umask (decision D10: "Data directories are created 0700").

    Raises:
        OSError: it cannot be created (e.g. a file of that name, no permission).
    """
    state_dir = state_dir.expanduser().absolute()
    missing = [state_dir, *state_dir.parents]
    missing = [directory for directory in missing if not directory.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
        directory.chmod(0o700)
    return state_dir


def _issuer_key_path(
    issuer_key: Path | None, state_dir: Path | None, *, create: bool
) -> tuple[Path, Path | None]:
    """The issuer key file to use, and the state directory when it lives there
    (created first when ``create``).

    Raises:
        OSError: ``create`` and the state directory cannot be created.
    """
    if issuer_key is not None:
        return issuer_key, None
    directory = (state_dir or default_state_dir()).expanduser().absolute()
    if create:
        _prepare_state_dir(directory)
    return directory / ISSUER_KEY_FILE, directory


def _uses_the_suite_issuer(selection: Selection, role: Role) -> bool:
    """Whether a selected check signs attestations as the suite's trusted issuer.

    Those checks live in ``conformance/checks/attestations.py`` (``suite_issuer``);
    a run without them creates no issuer (it would create one on first use).
    """
    from conformance.catalog import check_level, default_registry

    return any(
        check.function.__module__ == "conformance.checks.attestations"
        for check in selection.select(default_registry(), role=role, level_of=check_level)
    )


def _load_issuer(key_file: Path) -> TestIssuer:
    """The suite's test issuer from ``key_file``, created there (0600) if missing.

    Raises:
        click.ClickException: the file is not an issuer key file (one line).
        OSError: it cannot be read or created (the root reports it in one line).
    """
    from conformance.peers.issuer import TestIssuer

    if key_file.is_dir():
        raise click.BadParameter(f"{key_file} is a directory", param_hint="'--issuer-key'")
    try:
        return TestIssuer.load_or_create(key_file)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        reason = f"no {error.args[0]!r} member" if isinstance(error, KeyError) else str(error)
        raise click.ClickException(
            " ".join(
                f"{key_file} is not an issuer key file written by `vrm conformance issuer` "
                f"({reason}): give another key file, or move it away to have a new "
                "issuer created (and configure the target to trust the new one)".split()
            )
        ) from error


def _say_where_the_issuer_is(console: Console, key_file: Path, state_dir: Path | None) -> None:
    where = f"in the suite's state directory {state_dir}" if state_dir else "given by --issuer-key"
    console.print(f"test issuer key: {key_file} ({where})", highlight=False, soft_wrap=True)
    legacy = LEGACY_ISSUER_KEY.absolute()
    if state_dir is not None and legacy.exists() and legacy != key_file:
        console.print(
            f"note: {legacy} (kept there by older versions) is not used; move it to "
            f"{key_file} to keep the issuer your target trusts",
            highlight=False,
            soft_wrap=True,
        )


def _target_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--target``: an http(s) base URL with a host and a valid port.

    Raises:
        click.BadParameter: anything else (a usage error, exit 2).
    """
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{value!r} is not an http(s) URL such as http://127.0.0.1:8080", ctx, param
        )
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError as error:
        raise click.BadParameter(f"{value!r}: {error}", ctx, param) from error
    return value.rstrip("/")


_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=STATE_DIR_ENVIRONMENT_VARIABLE,
    show_envvar=True,
    help="Where the suite keeps its test issuer key "
    "[default: $XDG_STATE_HOME/vrm-conformance, else ~/.local/state/vrm-conformance].",
)


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
@click.option(
    "--target", required=True, callback=_target_url, help="Base URL of the agent under test."
)
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
    help="Private JWK of the suite's test credit-union issuer (created if missing) "
    "[default: issuer.jwk in the state directory].",
)
@_STATE_DIR
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
    issuer_key: Path | None,
    state_dir: Path | None,
    vendor_count: int,
    verbose: bool,
    quiet: bool,
) -> None:
    """Run the suite against the agent at --target."""
    from conformance.baseline import Baseline
    from conformance.context import RunOptions
    from conformance.operator import ConsoleOperator
    from conformance.reports import (
        LiveProgress,
        skip_summary_lines,
        write_html,
        write_json,
        write_junit,
    )
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
    json_file = json_path or out_dir / "result.json"
    junit_file = junit_path or out_dir / "junit.xml"
    html_file = html_path or out_dir / "report.html"
    # Where the results go must be writable before the run, not after it.
    for directory in {json_file.parent, junit_file.parent, html_file.parent}:
        directory.mkdir(parents=True, exist_ok=True)
    key_file: Path | None = issuer_key
    if Role(role) is Role.VENDOR:
        # Only a vendor is judged on attestations: load (or create) the issuer
        # now, so that an unusable key file is one line and not a harness error
        # per attestation check, and say where it is. A run that needs no issuer
        # (a buyer, or no attestation check selected) creates nothing.
        key_file, used_state_dir = _issuer_key_path(issuer_key, state_dir, create=False)
        if key_file.exists() or _uses_the_suite_issuer(selection, Role(role)):
            key_file, used_state_dir = _issuer_key_path(issuer_key, state_dir, create=True)
            _load_issuer(key_file)
            _say_where_the_issuer_is(console, key_file, used_state_dir)
    options = RunOptions(
        role=Role(role),
        target=target,
        reply_timeout=reply_timeout,
        operator_timeout=operator_timeout,
        max_real_wait=max_real_wait,
        run_timeout=run_timeout,
        restart_command=restart_command,
        issuer_key_file=None if key_file is None else str(key_file),
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
        for line in skip_summary_lines(run):
            click.echo(line)
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


@conformance.command("clauses")
@click.option("--gaps", "gaps_only", is_flag=True, help="Print only the clauses no check probes.")
def clauses_command(gaps_only: bool) -> None:
    """Print coverage by clause: each MUST with several clauses, and the checks
    that probe each clause (conformance/data/clauses.toml).

    Exits 1 when the map names an unknown requirement or check, or a check
    that does not cite the requirement.
    """
    from conformance.catalog import all_checks, requirements_index
    from conformance.clauses import clause_coverage, clause_problems, load_clauses

    entries = load_clauses()
    musts = {r.id: r.text for r in requirements_index().values() if r.level is Level.MUST}
    citations = {check: info["requirements"] for check, info in all_checks().items()}
    problems = clause_problems(entries, musts=musts, citations=citations)
    for entry in entries:
        clauses = [c for c in entry.clauses if not (gaps_only and c.covered)]
        if not clauses:
            continue
        covered = sum(c.covered for c in entry.clauses)
        click.echo(f"{entry.requirement}  {covered}/{len(entry.clauses)} clauses probed")
        for clause in clauses:
            probes = ", ".join(clause.checks) if clause.checks else f"NONE ({clause.gap})"
            click.echo(f"  - {clause.text}: {probes}")
    totals = clause_coverage(entries, musts=len(musts))
    click.echo(
        f"clauses probed: {totals.covered} of {totals.clauses} in {totals.requirements} "
        f"MUST requirements with several clauses ({totals.mapped_musts} of {totals.musts} "
        "MUSTs mapped; a MUST of one clause is covered by the checks citing it)"
    )
    for problem in problems:
        click.echo(f"clause-map: {problem}", err=True)
    if problems:
        sys.exit(1)


@conformance.command("issuer")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private JWK of the test issuer; created if missing "
    "[default: issuer.jwk in the state directory].",
)
@_STATE_DIR
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
def issuer_command(
    key_file: Path | None,
    state_dir: Path | None,
    jwks_out: Path | None,
    document_out: Path | None,
) -> None:
    """Print the suite's test credit-union issuer: its id and public JWKS.

    A vendor under test must trust this issuer for the attestation checks:
    configure its JWKS (and id) in the vendor before running the suite. Its
    key is kept in the suite's state directory, so `vrm conformance run` uses
    the same issuer from any working directory.
    """
    chosen, used_state_dir = _issuer_key_path(key_file, state_dir, create=True)
    issuer = _load_issuer(chosen)
    _say_where_the_issuer_is(Console(stderr=True), chosen, used_state_dir)
    jwks = issuer.jwks()
    if jwks_out is not None:
        jwks_out.parent.mkdir(parents=True, exist_ok=True)
        jwks_out.write_text(json.dumps(jwks, indent=2) + "\n", "utf-8")
    document = json.dumps({"issuer": issuer.issuer_id, "jwks": jwks}, indent=2)
    if document_out is not None:
        document_out.parent.mkdir(parents=True, exist_ok=True)
        document_out.write_text(document + "\n", "utf-8")
    click.echo(document)


@conformance.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--name",
    "names",
    multiple=True,
    help="The implementation's name for each result, in order (default: the result's target).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    default=Path("implementation-report.json"),
    show_default=True,
    help="The report as JSON (schemas/reports/implementation-report.schema.json).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    help="Also write the report as HTML.",
)
def report_command(
    results: tuple[Path, ...], names: tuple[str, ...], out_path: Path, html_path: Path | None
) -> None:
    """Aggregate the result.json of several runs into one implementation report (spec §14.4):
    one row per requirement, one column per implementation."""
    from conformance.catalog import traceability
    from conformance.reports.implementation import (
        ReportError,
        build_implementation_report,
        load_result,
        render_implementation_html,
    )

    if names and len(names) != len(results):
        raise click.UsageError("give one --name per result file, or none")
    try:
        documents = [load_result(path) for path in results]
        labelled = [
            (names[index] if names else f"{document.get('target', path.stem)}", document)
            for index, (path, document) in enumerate(zip(results, documents, strict=True))
        ]
        report = build_implementation_report(labelled, traceability=traceability())
    except ReportError as error:
        raise click.UsageError(str(error)) from error
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    click.echo(f"wrote {out_path}")
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_implementation_html(report), "utf-8")
        click.echo(f"wrote {html_path}")
    summary = report["summary"]
    click.echo(
        f"{summary['mustRequirements']} MUST requirements, "
        f"{summary['mustWithTwoPassing']} passed by at least two implementations"
    )


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
