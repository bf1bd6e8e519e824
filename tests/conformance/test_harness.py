"""The suite's harness: verdict logic, filters, baseline, exit codes, reports.

These tests run the real runner against a minimal target (a discovery
document on 127.0.0.1) with checks registered in a private registry, so
that every verdict path is exercised without depending on any agent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from aiohttp import web
from click.testing import CliRunner

from conformance import SPEC_VERSION, SUITE_VERSION
from conformance.baseline import Baseline
from conformance.cli import conformance as conformance_cli
from conformance.context import CheckContext, RunOptions, Session, fixture
from conformance.model import WIRE_STEP, Expectation, HarnessError, Level, Verdict
from conformance.registry import CheckRegistry
from conformance.reports import JUNIT_XSD_PATH, render_html, render_junit
from conformance.results import ExitCode, RunResult
from conformance.runner import judge, run_suite
from conformance.selection import Selection, read_id_list
from vrm_protocol.vocabulary import Role

# -- a minimal target -----------------------------------------------------------------------

CLOCK_CALLS = web.AppKey("clock_calls", list[Any])


def _discovery(base: str, *, driver: bool) -> dict[str, Any]:
    endpoints = {"inbox": base + "/vrm/inbox", "jwks": base + "/vrm/jwks.json"}
    if driver:
        endpoints["testDriver"] = base + "/vrm/test-driver"
    return {
        "versions": ["1.0"],
        "id": base,
        "role": "vendor",
        "endpoints": endpoints,
        "messageTypes": {"accepts": ["personal-rfi"], "sends": ["offer"]},
    }


async def _start_target(*, driver: bool) -> tuple[web.AppRunner, str]:
    app = web.Application()
    state: dict[str, str] = {}

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(_discovery(state["base"], driver=driver))

    async def clock(request: web.Request) -> web.Response:
        app[CLOCK_CALLS].append(await request.json())
        return web.json_response({})

    app[CLOCK_CALLS] = []
    app.router.add_get("/.well-known/vrm", discovery)
    app.router.add_post("/vrm/test-driver/clock", clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state["base"] = f"http://127.0.0.1:{port}"
    return runner, state["base"]


@pytest.fixture
async def target() -> AsyncIterator[str]:
    runner, base = await _start_target(driver=False)
    yield base
    await runner.cleanup()


@pytest.fixture
async def driver_target() -> AsyncIterator[tuple[str, web.AppRunner]]:
    runner, base = await _start_target(driver=True)
    yield base, runner
    await runner.cleanup()


# -- a private registry with one check per verdict path -----------------------------------

BUILDS: list[str] = []


@fixture("shared-scenario")
async def shared_scenario(session: Session) -> int:
    BUILDS.append("built")
    return 42


@fixture("broken-scenario")
async def broken_scenario(session: Session) -> int:
    from conformance.model import CheckFailed

    raise CheckFailed(Expectation("the target answered the RFI", False, actual="nothing"))


def _registry() -> CheckRegistry:
    registry = CheckRegistry()
    both = (Role.VENDOR, Role.BUYER)

    @registry.check("T-PASS", title="passes", step="search", requirements=("REQ-A",), roles=both)
    async def passes(ctx: CheckContext) -> None:
        value = await ctx.use(shared_scenario)
        ctx.require(value == 42, "the scenario built", expected=42, actual=value)

    @registry.check(
        "T-PASS-AGAIN", title="reuses", step="search", requirements=("REQ-A",), roles=both
    )
    async def reuses(ctx: CheckContext) -> None:
        value = await ctx.use(shared_scenario)
        ctx.require(value == 42, "the scenario is shared")

    @registry.check("T-FAIL", title="fails", step="negotiate", requirements=("REQ-B",), roles=both)
    async def fails(ctx: CheckContext) -> None:
        ctx.expect(True, "first holds")
        ctx.note("<script>alert('target-controlled')</script>")
        one, two = 1, 2
        ctx.require(one == two, "one is two", expected=2, actual=1, requirement="REQ-B")

    @registry.check("T-SOFT", title="warns", step="negotiate", requirements=("REQ-C",), roles=both)
    async def warns(ctx: CheckContext) -> None:
        ctx.require(True, "hard part holds")
        ctx.recommend(False, "soft part does not", requirement="REQ-C")

    @registry.check(
        "T-SHOULD",
        title="should-level check",
        step="welcome",
        requirements=("REQ-D",),
        roles=both,
        level=Level.SHOULD,
    )
    async def should_level(ctx: CheckContext) -> None:
        ctx.require(False, "a SHOULD-level require fails softly")

    @registry.check(
        "T-SKIP",
        title="needs a driver",
        step="exit",
        requirements=("REQ-E",),
        roles=both,
        needs=("test-driver",),
    )
    async def needs_driver(ctx: CheckContext) -> None:
        ctx.require(True, "ran with a driver")

    @registry.check("T-CRASH", title="crashes", step="exit", requirements=("REQ-F",), roles=both)
    async def crashes(ctx: CheckContext) -> None:
        raise RuntimeError("suite bug")

    @registry.check(
        "T-EMPTY", title="judges nothing", step="exit", requirements=("REQ-G",), roles=both
    )
    async def judges_nothing(ctx: CheckContext) -> None:
        return None

    @registry.check(
        "T-HANG", title="hangs", step="exit", requirements=("REQ-H",), roles=both, timeout=0.2
    )
    async def hangs(ctx: CheckContext) -> None:
        await asyncio.Event().wait()

    @registry.check(
        "T-PREREQ", title="prerequisite fails", step="transact", requirements=("REQ-I",), roles=both
    )
    async def prerequisite(ctx: CheckContext) -> None:
        await ctx.use(broken_scenario)
        ctx.require(True, "never reached")

    @registry.check(
        "T-HARNESS", title="harness error", step=WIRE_STEP, requirements=("REQ-J",), roles=both
    )
    async def harness(ctx: CheckContext) -> None:
        raise HarnessError("could not bind a port")

    @registry.check(
        "T-BUYER-ONLY",
        title="buyer only",
        step="search",
        requirements=("REQ-K",),
        roles=(Role.BUYER,),
    )
    async def buyer_only(ctx: CheckContext) -> None:
        ctx.require(True, "ran")

    @registry.check(
        "T-AUDIT", title="audit", step="search", requirements=("REQ-L",), roles=both, audit=True
    )
    async def audit(ctx: CheckContext) -> None:
        ctx.require(len(ctx.session.transcript) >= 1, "the discovery fetch is in the transcript")

    return registry


def _must(check: object) -> Level:
    return Level.MUST


async def _run(target: str, **kwargs: Any) -> RunResult:
    BUILDS.clear()
    return await run_suite(
        RunOptions(role=Role.VENDOR, target=target),
        registry=kwargs.pop("registry", _registry()),
        level_of=kwargs.pop("level_of", lambda check: check.level or Level.MUST),
        **kwargs,
    )


# -- verdict logic --------------------------------------------------------------------------


def test_judge_maps_expectations_to_verdicts() -> None:
    ok = Expectation("a", True)
    hard = Expectation("b", False)
    soft = Expectation("c", False, level=Level.SHOULD)
    assert judge([ok])[0] is Verdict.PASS
    assert judge([ok, soft])[0] is Verdict.WARNING
    assert judge([soft, hard]) == (Verdict.FAIL, "b")
    assert judge([])[0] is Verdict.HARNESS_ERROR


async def test_every_verdict_path(target: str) -> None:
    run = await _run(target)
    verdicts = {result.check_id: result.verdict for result in run.results}
    assert verdicts == {
        "T-PASS": Verdict.PASS,
        "T-PASS-AGAIN": Verdict.PASS,
        "T-FAIL": Verdict.FAIL,
        "T-SOFT": Verdict.WARNING,
        "T-SHOULD": Verdict.WARNING,
        "T-SKIP": Verdict.SKIPPED,
        "T-CRASH": Verdict.HARNESS_ERROR,
        "T-EMPTY": Verdict.HARNESS_ERROR,
        "T-HANG": Verdict.HARNESS_ERROR,
        "T-PREREQ": Verdict.FAIL,
        "T-HARNESS": Verdict.HARNESS_ERROR,
        "T-AUDIT": Verdict.PASS,
    }
    by_id = {result.check_id: result for result in run.results}
    assert BUILDS == ["built"], "a shared scenario is built once per run"
    assert "endpoints.testDriver" in by_id["T-SKIP"].reason
    assert "suite bug" in (by_id["T-CRASH"].traceback or "")
    assert "prerequisite scenario 'broken-scenario' failed" in by_id["T-PREREQ"].reason
    failed = by_id["T-FAIL"].failed_expectations()
    assert [(e.expected, e.actual, e.requirement) for e in failed] == [(2, 1, "REQ-B")]
    # Audits run last; the buyer-only check is not selected against a vendor.
    assert run.results[-1].check_id == "T-AUDIT"
    assert run.exit_code() is ExitCode.HARNESS_ERROR
    assert (run.discovery or {}).get("role") == "vendor"


async def test_capability_met_runs_and_clock_is_reset(
    driver_target: tuple[str, web.AppRunner],
) -> None:
    base, runner = driver_target

    registry = CheckRegistry()

    @registry.check(
        "T-CLOCK",
        title="moves the clock",
        step="exit",
        requirements=("REQ-E",),
        roles=(Role.VENDOR,),
        needs=("test-driver",),
    )
    async def moves_clock(ctx: CheckContext) -> None:
        from conformance.target import advance_clock

        before = ctx.session.clock.now()
        await advance_clock(ctx.session, 3600)
        moved = (ctx.session.clock.now() - before).total_seconds()
        ctx.require(moved >= 3600, "the suite's clock follows the target's", actual=moved)

    run = await _run(base, registry=registry)
    assert [r.verdict for r in run.results] == [Verdict.PASS]
    calls = runner.app[CLOCK_CALLS]
    assert calls == [{"offsetSeconds": 3600}, {"offsetSeconds": 0}]


# -- exit codes -----------------------------------------------------------------------------


async def test_exit_codes(target: str) -> None:
    def only(*ids: str) -> Selection:
        return Selection(include=ids)

    assert (await _run(target, selection=only("T-PASS"))).exit_code() is ExitCode.OK
    assert (await _run(target, selection=only("T-SOFT"))).exit_code() is ExitCode.OK
    assert (await _run(target, selection=only("T-PASS", "T-FAIL"))).exit_code() is (ExitCode.FAILED)
    assert (await _run(target, selection=only("T-CRASH", "T-FAIL"))).exit_code() is (
        ExitCode.HARNESS_ERROR
    )
    # Nothing selected, and only skipped: both mean nothing was judged.
    assert (await _run(target, selection=only("NO-SUCH-*"))).exit_code() is (ExitCode.NOTHING_RAN)
    assert (await _run(target, selection=only("T-SKIP"))).exit_code() is ExitCode.NOTHING_RAN


def test_cli_exits_non_zero_when_zero_checks_ran(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        conformance_cli,
        [
            "run",
            "--role",
            "vendor",
            "--target",
            "http://127.0.0.1:9",
            "--check",
            "NO-SUCH-CHECK",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == int(ExitCode.NOTHING_RAN), result.output
    written = json.loads((tmp_path / "result.json").read_text())
    assert written["summary"]["total"] == 0
    assert written["suite"]["version"] == SUITE_VERSION
    assert written["specVersion"] == SPEC_VERSION


# -- filters --------------------------------------------------------------------------------


def test_selection_filters_and_orders() -> None:
    registry = _registry()
    levels = {"T-SHOULD": Level.SHOULD}

    def level_of(check: Any) -> Level:
        return levels.get(check.id, Level.MUST)

    def ids(selection: Selection, role: Role = Role.VENDOR) -> list[str]:
        return [c.id for c in selection.select(registry, role=role, level_of=level_of)]

    everything = ids(Selection())
    assert everything[0] in {"T-PASS", "T-PASS-AGAIN"}
    assert everything[-1] == "T-AUDIT"
    assert "T-BUYER-ONLY" not in everything
    assert "T-BUYER-ONLY" in ids(Selection(), Role.BUYER)
    assert ids(Selection(steps=frozenset({"negotiate"}))) == ["T-FAIL", "T-SOFT"]
    assert ids(Selection(levels=frozenset({Level.SHOULD}))) == ["T-SHOULD"]
    assert ids(Selection(include=("T-PASS*",))) == ["T-PASS", "T-PASS-AGAIN"]
    assert ids(Selection(include=("T-PASS*",), exclude=("*AGAIN",))) == ["T-PASS"]
    assert ids(Selection(requirements=("REQ-B", "REQ-C"))) == ["T-FAIL", "T-SOFT"]
    assert Selection(include=("T-PASS", "TYPO-*")).unmatched_patterns(registry) == ["TYPO-*"]
    with pytest.raises(ValueError, match="unknown step"):
        Selection(steps=frozenset({"haggle"}))


def test_id_list_files(tmp_path: Path) -> None:
    listing = tmp_path / "ids.txt"
    listing.write_text("# slow ones\nSEC-REPLAY-*   # needs restart\n\nT-PASS\n")
    assert read_id_list(listing) == ["SEC-REPLAY-*", "T-PASS"]


def test_registry_refuses_bad_declarations() -> None:
    registry = CheckRegistry()

    async def body(ctx: CheckContext) -> None:
        return None

    def declare(check_id: str, **kwargs: Any) -> None:
        arguments: dict[str, Any] = {
            "title": "t",
            "step": "search",
            "requirements": ("R-1",),
            "roles": (Role.VENDOR,),
        }
        arguments.update(kwargs)
        registry.check(check_id, **arguments)(body)

    declare("OK-ONE")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("lower-case", {}, "does not match"),
        ("OK-ONE", {}, "twice"),
        ("OK-TWO", {"step": "haggle"}, "unknown step"),
        ("OK-THREE", {"requirements": ()}, "cites no requirement"),
        ("OK-FOUR", {"roles": ()}, "no role"),
        ("OK-FIVE", {"needs": ("telepathy",)}, "unknown capability"),
    ]
    for bad_id, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            declare(bad_id, **kwargs)


# -- baseline -------------------------------------------------------------------------------


async def test_baseline_marks_expected_failures_and_stale_entries(target: str) -> None:
    baseline = Baseline.from_json(
        {
            "expectedFailures": [
                {"check": "T-FAIL", "reason": "known"},
                {"check": "T-PASS", "role": "vendor"},
                {"check": "T-PASS-AGAIN", "role": "buyer"},
                {"check": "T-GONE"},
            ]
        }
    )
    run = await _run(target, selection=Selection(include=("T-FAIL", "T-PASS*")), baseline=baseline)
    by_id = {result.check_id: result for result in run.results}
    assert by_id["T-FAIL"].baselined
    assert not by_id["T-FAIL"].counts_as_failure
    assert by_id["T-PASS"].stale_baseline
    assert not by_id["T-PASS-AGAIN"].stale_baseline, "the entry is for buyer targets only"
    assert run.stale_baseline == [
        "T-PASS: listed as an expected failure but passed",
        "T-GONE: listed as an expected failure but the suite has no such check",
    ]
    assert run.exit_code() is ExitCode.OK
    assert run.exit_code(strict_baseline=True) is ExitCode.STALE_BASELINE
    assert run.counts()["expected-failures"] == 1
    rebuilt = Baseline.from_failures(run, reason="today")
    assert rebuilt.to_json() == {
        "expectedFailures": [{"check": "T-FAIL", "role": "vendor", "reason": "today"}]
    }


def test_baseline_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        Baseline.load(path)
    documents: tuple[dict[str, Any], ...] = (
        {},
        {"expectedFailures": [{}]},
        {"expectedFailures": [{"check": "X", "role": "cat"}]},
    )
    for document in documents:
        path.write_text(json.dumps(document))
        with pytest.raises(ValueError):
            Baseline.load(path)


# -- reports --------------------------------------------------------------------------------


async def test_junit_output_validates_against_the_jenkins_schema(target: str) -> None:
    baseline = Baseline.from_json({"expectedFailures": [{"check": "T-FAIL"}]})
    run = await _run(target, baseline=baseline)
    document = render_junit(run)
    schema = xmlschema.XMLSchema(str(JUNIT_XSD_PATH))
    schema.validate(document.decode())
    tree: Any = schema.to_dict(document.decode())
    suites = {suite["@name"]: suite for suite in tree["testsuite"]}
    assert set(suites) == {
        "vendor.search",
        "vendor.negotiate",
        "vendor.transact",
        "vendor.welcome",
        "vendor.exit",
        "vendor.wire",
    }
    exit_suite = suites["vendor.exit"]
    assert (exit_suite["@errors"], exit_suite["@skipped"]) == ("3", "1")
    # The baselined failure is reported as skipped, not as a failure.
    assert suites["vendor.negotiate"]["@failures"] == "0"


async def test_html_report_is_self_contained_and_grouped(target: str) -> None:
    run = await _run(target)
    html = render_html(run)
    for check_id in ("T-PASS", "T-FAIL", "T-SKIP", "T-CRASH"):
        assert f'id="check-{check_id}"' in html
    for step in ("search", "negotiate", "exit", "wire"):
        assert f'id="step-{step}"' in html
    assert 'id="by-requirement"' in html
    assert "REQ-B" in html
    assert SUITE_VERSION in html
    assert f"protocol version\n  <strong>{SPEC_VERSION}" in html
    # Self-contained: nothing is loaded from elsewhere.
    for external in ("<script", "<link", "src="):
        assert external not in html
    # Target-controlled text is escaped.
    assert "&lt;script&gt;alert(" in html


async def test_json_result_names_versions_and_cites_exchanges(target: str) -> None:
    run = await _run(target, selection=Selection(include=("T-AUDIT", "T-FAIL")))
    document = run.to_json()
    assert document["suite"] == {"name": "vrm-conformance", "version": SUITE_VERSION}
    assert document["specVersion"] == SPEC_VERSION
    assert document["discovery"]["id"] == target
    assert document["transcript"][0]["request"]["url"] == target + "/.well-known/vrm"
    assert document["transcript"][0]["scope"] == "run:discovery"
    failing = next(check for check in document["checks"] if check["id"] == "T-FAIL")
    assert failing["requirements"] == ["REQ-B"]
    assert failing["expectations"][-1] == {
        "description": "one is two",
        "passed": False,
        "level": "MUST",
        "expected": 2,
        "actual": 1,
        "requirement": "REQ-B",
    }
    json.dumps(document)  # serialisable as is


async def test_unreachable_target_is_not_a_pass() -> None:
    registry = CheckRegistry()

    @registry.check(
        "T-NEEDS-DISCOVERY",
        title="uses discovery",
        step="search",
        requirements=("REQ-A",),
        roles=(Role.VENDOR,),
    )
    async def uses_discovery(ctx: CheckContext) -> None:
        ctx.require("id" in ctx.discovery, "discovery has an id")

    run = await _run("http://127.0.0.1:9", registry=registry)
    assert [r.verdict for r in run.results] == [Verdict.HARNESS_ERROR]
    assert "discovery" in run.results[0].reason
    assert run.exit_code() is not ExitCode.OK


async def test_an_expectation_is_judged_at_its_requirements_level(target: str) -> None:
    registry = CheckRegistry()

    @registry.check(
        "T-MIXED",
        title="a MUST check with a SHOULD expectation",
        step="search",
        requirements=("REQ-MUST", "REQ-SHOULD"),
        roles=(Role.VENDOR,),
    )
    async def mixed(ctx: CheckContext) -> None:
        ctx.expect(True, "the MUST part holds", requirement="REQ-MUST")
        ctx.expect(False, "the SHOULD part does not", requirement="REQ-SHOULD")

    levels = {"REQ-MUST": Level.MUST, "REQ-SHOULD": Level.SHOULD}
    run = await _run(target, registry=registry, requirement_levels=levels)
    [result] = run.results
    assert result.verdict is Verdict.WARNING
    assert [e.level for e in result.expectations] == [Level.MUST, Level.SHOULD]
    assert run.exit_code() is ExitCode.OK
    # Without the registry's levels the same expectation is a MUST and fails.
    strict = await _run(target, registry=registry)
    assert strict.results[0].verdict is Verdict.FAIL


async def test_the_run_time_limit_turns_what_is_left_into_harness_errors(target: str) -> None:
    registry = CheckRegistry()
    both = (Role.VENDOR, Role.BUYER)

    @registry.check("T-QUICK", title="quick", step="search", requirements=("R-1",), roles=both)
    async def quick(ctx: CheckContext) -> None:
        ctx.require(True, "done at once")

    @registry.check(
        "T-SLOW", title="slow", step="negotiate", requirements=("R-1",), roles=both, timeout=30
    )
    async def slow(ctx: CheckContext) -> None:
        await asyncio.Event().wait()

    @registry.check("T-LATE", title="late", step="exit", requirements=("R-1",), roles=both)
    async def late(ctx: CheckContext) -> None:
        ctx.require(True, "never reached")

    run = await run_suite(
        RunOptions(role=Role.VENDOR, target=target, run_timeout=1.0),
        registry=registry,
        level_of=lambda check: Level.MUST,
    )
    by_id = {result.check_id: result for result in run.results}
    assert by_id["T-QUICK"].verdict is Verdict.PASS
    # The slow check is cut at the run's deadline, not its own 30 s.
    assert by_id["T-SLOW"].verdict is Verdict.HARNESS_ERROR
    assert by_id["T-SLOW"].duration_seconds < 5
    assert by_id["T-LATE"].verdict is Verdict.HARNESS_ERROR
    assert by_id["T-LATE"].reason.startswith("not run")
    assert run.exit_code() is ExitCode.HARNESS_ERROR
