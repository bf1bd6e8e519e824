"""The suite against the real reference agents, and against deliberately broken ones.

The reference vendor and buyer run as processes on 127.0.0.1 (port 0, a
fresh data directory, ``--test-mode``); ``vrm conformance run`` judges them
exactly as it would judge a third party's agent. A suite that passes the
reference agents proves little on its own, so each agent is also started
with each fault switch it offers (``--fault NAME``), and the check meant to
catch that fault must fail it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pytest
import xmlschema
from agent_processes import RunningAgent, running_agent
from click.testing import CliRunner
from kill_matrix import RECORDED, Kill

from conformance.catalog import all_checks
from conformance.cli import conformance as conformance_cli
from conformance.peers.issuer import TestIssuer
from conformance.reports import JUNIT_XSD_PATH
from conformance.results import ExitCode
from reference_buyer.faults import FAULTS as BUYER_FAULTS
from reference_vendor.faults import FAULTS

pytestmark = pytest.mark.slow

#: Each fault of the reference vendor, the check that must catch it, and the
#: verdict it must give: ``fail`` for a MUST, ``warning`` for a SHOULD.
FAULT_VERDICTS: dict[str, tuple[str, str]] = {
    "accept-expired-offer": ("VEN-ACCEPT-EXPIRED", "fail"),
    "skip-audience-check": ("SEC-AUDIENCE", "fail"),
    "keep-data-after-retention": ("VEN-RETENTION", "fail"),
    "ignore-exit": ("VEN-EXIT-FINAL", "fail"),
    "wrong-receipt-digest": ("VEN-RFI-RECEIPT", "fail"),
    # VRM-MSG-005 is a SHOULD: an offer over budget is a warning, never a failure.
    "offer-over-budget": ("VEN-RFI-OFFER", "warning"),
    "answer-outside-thread": ("VEN-CONV-ANSWER", "fail"),
    "ignore-escalation": ("VEN-ESCALATION", "fail"),
    "escalation-deadline-unchecked": ("VEN-ESCALATION", "fail"),
}


@pytest.fixture
def issuer(tmp_path: Path) -> tuple[Path, Path]:
    """The suite's test credit union: its key file, and the document the vendor trusts."""
    key_file = tmp_path / "issuer.jwk"
    document = tmp_path / "issuer.json"
    result = CliRunner().invoke(
        conformance_cli, ["issuer", "--key-file", str(key_file), "--out", str(document)]
    )
    assert result.exit_code == 0, result.output
    assert (
        TestIssuer.load_or_create(key_file).issuer_id == json.loads(document.read_text())["issuer"]
    )
    return key_file, document


@pytest.fixture
def vendor(tmp_path: Path, issuer: tuple[Path, Path]) -> Iterator[RunningAgent]:
    """The reference vendor, trusting the suite's test issuer."""
    with running_agent(
        "vendor",
        tmp_path / "vendor",
        ["--catalogue", "dealer-mayfair", "--trust-issuer", str(issuer[1])],
    ) as agent:
        yield agent


def _run(
    role: str, agent: RunningAgent, out: Path, *extra: str, issuer_key: Path | None = None
) -> tuple[int, dict[str, Any], str]:
    """``vrm conformance run`` in process: exit code, result document, output."""
    arguments = [
        "run",
        "--role",
        role,
        "--target",
        agent.base_url,
        "--out",
        str(out),
        "--quiet",
        # Bounded: each check has its own timeout, and the run as a whole this.
        "--run-timeout",
        "240",
        *extra,
    ]
    if issuer_key is not None:
        arguments += ["--issuer-key", str(issuer_key)]
    result = CliRunner().invoke(conformance_cli, arguments)
    document = json.loads((out / "result.json").read_text("utf-8"))
    return result.exit_code, document, result.output


def _verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {check["id"]: check["verdict"] for check in document["checks"]}


def _explain(document: dict[str, Any], agent: RunningAgent) -> str:
    lines = []
    for check in document["checks"]:
        if check["verdict"] in ("fail", "harness-error"):
            lines.append(f"{check['id']}: {check['verdict']}: {check['reason']}")
            lines.extend(
                f"    {e['description']} (expected {e.get('expected')!r}, got {e.get('actual')!r})"
                for e in check["expectations"]
                if not e["passed"]
            )
            if check.get("traceback"):
                lines.append(check["traceback"])
    return "\n".join(lines) + "\n--- agent log ---\n" + agent.log()


def _assert_clean_run(
    role: str, code: int, document: dict[str, Any], agent: RunningAgent, out: Path
) -> None:
    summary = document["summary"]
    assert code == int(ExitCode.OK), _explain(document, agent)
    assert summary["fail"] == 0
    assert summary["harness-error"] == 0
    expected_ids = {check_id for check_id, info in all_checks().items() if role in info["roles"]}
    assert set(_verdicts(document)) == expected_ids, "every check of the role was selected"
    assert summary["pass"] >= len(expected_ids) * 3 // 4, summary
    for check in document["checks"]:
        if check["verdict"] == "skipped":
            assert check["reason"], f"{check['id']} was skipped without a reason"
    # The three reports: JSON (read above), JUnit validated against its schema, HTML.
    junit = (out / "junit.xml").read_text("utf-8")
    xmlschema.XMLSchema(str(JUNIT_XSD_PATH)).validate(junit)
    html = (out / "report.html").read_text("utf-8")
    assert all(f'id="check-{check_id}"' in html for check_id in expected_ids)


def test_the_reference_vendor_passes(
    vendor: RunningAgent, issuer: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    code, document, _ = _run(
        "vendor",
        vendor,
        out,
        "--restart-command",
        vendor.restart_command,
        issuer_key=issuer[0],
    )
    _assert_clean_run("vendor", code, document, vendor, out)
    verdicts = _verdicts(document)
    # Judged, not skipped: the restart ran, the issuer is trusted, the driver works.
    for check_id in ("SEC-REPLAY-RESTART", "VEN-ATTESTATION-TRUSTED", "VEN-RETENTION"):
        assert verdicts[check_id] in ("pass", "warning"), _explain(document, vendor)


def test_the_reference_buyer_passes(tmp_path: Path) -> None:
    with running_agent("buyer", tmp_path / "buyer") as buyer:
        out = tmp_path / "results"
        code, document, _ = _run("buyer", buyer, out, "--restart-command", buyer.restart_command)
        _assert_clean_run("buyer", code, document, buyer, out)
        verdicts = _verdicts(document)
        # Judged, not skipped (a SHOULD may warn: the run still passes).
        for check_id in ("SEC-REPLAY-RESTART", "BUY-ACCEPT-BINDS-OFFER", "BUY-EXIT"):
            assert verdicts[check_id] in ("pass", "warning"), _explain(document, buyer)


_CHECK_ID = re.compile(r"\(([A-Z]+(?:-[A-Z0-9]+)+)")


def _expected_verdict(fault: str, faults: dict[str, str] = FAULTS) -> tuple[str, str]:
    """The check that must catch ``fault`` (of ``faults``) and its verdict: from the
    table above, else the first check the fault's own description names (a MUST: ``fail``)."""
    if faults is FAULTS and fault in FAULT_VERDICTS:
        return FAULT_VERDICTS[fault]
    named = _CHECK_ID.search(faults[fault])
    assert named is not None, f"fault {fault!r} names no check; add it to FAULT_VERDICTS"
    return named.group(1), "fail"


def _record(role: str, fault: str, check_id: str, verdict: str, document: dict[str, Any]) -> None:
    verdicts = _verdicts(document)
    # The MUSTs the fault was caught breaking: the requirements of the failed
    # MUST-level expectations of the check that must catch it.
    broken = sorted(
        {
            str(expectation["requirement"])
            for check in document["checks"]
            if check["id"] == check_id
            for expectation in check["expectations"]
            if not expectation["passed"]
            and expectation.get("level") == "MUST"
            and expectation.get("requirement")
        }
    )
    RECORDED.append(
        Kill(
            role=role,
            fault=fault,
            expected_check=check_id,
            caught=verdicts.get(check_id) == verdict,
            failing_checks=tuple(
                sorted(name for name, said in verdicts.items() if said in ("fail", "warning"))
            ),
            requirements=tuple(broken),
        )
    )


@pytest.mark.parametrize(("role", "faults"), [("vendor", FAULTS), ("buyer", BUYER_FAULTS)])
def test_every_fault_of_a_reference_agent_has_a_check(role: str, faults: dict[str, str]) -> None:
    catalogue = all_checks()
    assert faults, f"the reference {role} offers faults to test the suite with"
    for fault in faults:
        check_id, verdict = _expected_verdict(fault, faults)
        assert check_id in catalogue, f"{fault}: no check {check_id}"
        assert role in catalogue[check_id]["roles"], f"{fault}: {check_id} does not judge a {role}"
        assert verdict in ("fail", "warning")


#: The catalogue a broken vendor runs with, when the fault needs another than
#: dealer-mayfair (whose RFI offers are binding): an indicative offer to accept.
FAULT_CATALOGUES: dict[str, str] = {"accept-indicative": "dealer-postal"}

#: Each fault is run against the check that must catch it (with the fixtures that
#: check needs): a fault per MUST keeps the default test run bounded. With
#: VRM_KILL_MATRIX=full each fault runs the whole suite instead, as CI would run
#: it against an implementation (about a minute a fault).
FULL_KILL_MATRIX: Final = os.environ.get("VRM_KILL_MATRIX") == "full"


def _selection(check_id: str) -> tuple[str, ...]:
    return () if FULL_KILL_MATRIX else ("--check", check_id)


#: Faults the full run misses today, with the reason. Strict: when the suite
#: starts catching one, the test fails until the entry is removed.
KNOWN_MISSES: dict[str, str] = {}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(fault, marks=pytest.mark.xfail(reason=KNOWN_MISSES[fault], strict=True))
        if fault in KNOWN_MISSES
        else fault
        for fault in sorted(FAULTS)
    ],
)
def test_a_broken_vendor_is_caught(fault: str, tmp_path: Path, issuer: tuple[Path, Path]) -> None:
    check_id, verdict = _expected_verdict(fault)
    catalogue = FAULT_CATALOGUES.get(fault, "dealer-mayfair")
    with running_agent(
        "vendor",
        tmp_path / "vendor",
        ["--catalogue", catalogue, "--trust-issuer", str(issuer[1]), "--fault", fault],
    ) as broken:
        # The fault must be caught by the check that cites the broken requirement.
        code, document, _ = _run(
            "vendor", broken, tmp_path / "results", *_selection(check_id), issuer_key=issuer[0]
        )
    _record("vendor", fault, check_id, verdict, document)
    assert _verdicts(document)[check_id] == verdict, _explain(document, broken)
    if verdict == "fail":
        assert code == int(ExitCode.FAILED)
        assert document["exitCode"] == int(ExitCode.FAILED)
    else:
        assert code == int(ExitCode.OK)


@pytest.mark.parametrize("fault", sorted(BUYER_FAULTS))
def test_a_broken_buyer_is_caught(fault: str, tmp_path: Path) -> None:
    check_id, verdict = _expected_verdict(fault, BUYER_FAULTS)
    with running_agent("buyer", tmp_path / "buyer", ["--fault", fault]) as broken:
        code, document, _ = _run("buyer", broken, tmp_path / "results", *_selection(check_id))
    _record("buyer", fault, check_id, verdict, document)
    assert _verdicts(document)[check_id] == verdict, _explain(document, broken)
    assert code == int(ExitCode.FAILED)
    assert document["exitCode"] == int(ExitCode.FAILED)


def test_baseline_and_exit_codes_against_a_broken_vendor(
    tmp_path: Path, issuer: tuple[Path, Path]
) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "expectedFailures": [
                    {"check": "SEC-AUDIENCE", "reason": "the fault under test"},
                    {"check": "DISC-DOCUMENT", "reason": "fixed since"},
                ]
            }
        )
    )
    selected: Sequence[str] = ("--check", "SEC-AUDIENCE", "--check", "DISC-DOCUMENT")
    with running_agent(
        "vendor",
        tmp_path / "vendor",
        ["--catalogue", "dealer-mayfair", "--fault", "skip-audience-check"],
    ) as broken:
        code, document, _ = _run(
            "vendor", broken, tmp_path / "plain", *selected, issuer_key=issuer[0]
        )
        assert code == int(ExitCode.FAILED)
        code, document, output = _run(
            "vendor",
            broken,
            tmp_path / "baselined",
            *selected,
            "--baseline",
            str(baseline),
            issuer_key=issuer[0],
        )
        assert code == int(ExitCode.OK), output
        assert document["summary"]["expected-failures"] == 1
        assert document["staleBaseline"] == [
            "DISC-DOCUMENT: listed as an expected failure but passed"
        ]
        code, _, _ = _run(
            "vendor",
            broken,
            tmp_path / "strict",
            *selected,
            "--baseline",
            str(baseline),
            "--strict-baseline",
            issuer_key=issuer[0],
        )
        assert code == int(ExitCode.STALE_BASELINE)
        code, document, _ = _run(
            "vendor", broken, tmp_path / "none", "--check", "NO-SUCH-CHECK", issuer_key=issuer[0]
        )
        assert code == int(ExitCode.NOTHING_RAN)
        assert document["summary"]["total"] == 0


def test_without_a_test_driver_checks_are_skipped_not_blamed(tmp_path: Path) -> None:
    # A production vendor (no test mode, no trusted issuer): what needs the
    # driver, the issuer or more real time than allowed is skipped, with why.
    # Its operator lets replies reach the suite's buyers on loopback (spec §11.8).
    with running_agent(
        "vendor",
        tmp_path / "vendor",
        ["--catalogue", "dealer-mayfair", "--allow-delivery-to", "127.0.0.1"],
        test_mode=False,
    ) as vendor:
        code, document, _ = _run(
            "vendor",
            vendor,
            tmp_path / "results",
            "--max-real-wait",
            "5",
            issuer_key=tmp_path / "issuer.jwk",
        )
    assert code == int(ExitCode.OK), _explain(document, vendor)
    assert document["discovery"]["endpoints"].get("testDriver") is None
    skipped = {c["id"]: c["reason"] for c in document["checks"] if c["verdict"] == "skipped"}
    assert "endpoints.testDriver" in skipped["VEN-RETENTION"]
    assert "--max-real-wait" in skipped["VEN-ACCEPT-EXPIRED"]
    assert "test issuer" in skipped["VEN-ATTESTATION-TRUSTED"]
    assert document["summary"]["harness-error"] == 0


def test_a_buyer_without_a_driver_is_prompted_through_the_operator(tmp_path: Path) -> None:
    with running_agent("buyer", tmp_path / "buyer", test_mode=False) as buyer:
        code, document, output = _run(
            "buyer",
            buyer,
            tmp_path / "results",
            "--check",
            "BUY-RFI-SENT",
            "--operator-timeout",
            "1",
        )
    [check] = document["checks"]
    # Nobody acted on the instruction: the buyer sent nothing, which is a
    # failure of the run, never a harness error.
    assert check["verdict"] == "fail", check
    assert "sends a personal RFI" in check["reason"]
    assert "Operator action needed" in output
    assert code == int(ExitCode.FAILED)


def test_a_buyer_without_an_inbox_collects_from_the_mailboxes(tmp_path: Path) -> None:
    # No replyTo: the suite's vendors leave their messages in their mailboxes,
    # and the buyer polls them with poll tokens of the right pseudonym.
    with running_agent("buyer", tmp_path / "buyer", ["--no-inbox"]) as buyer:
        code, document, _ = _run(
            "buyer",
            buyer,
            tmp_path / "results",
            "--check",
            "BUY-RFI-SENT,BUY-ACCEPT-BINDS-OFFER,AUD-BUYER-POLLS",
        )
    verdicts = _verdicts(document)
    assert set(verdicts) == {"BUY-RFI-SENT", "BUY-ACCEPT-BINDS-OFFER", "AUD-BUYER-POLLS"}
    assert verdicts["AUD-BUYER-POLLS"] == "pass", _explain(document, buyer)
    assert set(verdicts.values()) <= {"pass", "warning"}, _explain(document, buyer)
    assert code == int(ExitCode.OK)
