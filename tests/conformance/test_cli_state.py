"""The suite's state lives in one documented place, and its console summary says why
checks were skipped (issue 9).

``vrm conformance issuer`` and ``vrm conformance run`` used to create
``./.vrm-conformance/issuer.jwk`` in whatever directory they ran from, so two
directories meant two issuers, and a vendor configured to trust one had the
attestation checks judged with the other. The state now lives in
``$XDG_STATE_HOME/vrm-conformance`` (``~/.local/state/vrm-conformance``),
overridable with ``--state-dir`` or ``VRM_CONFORMANCE_STATE_DIR``, and both
commands say where it is.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_processes import running_agent
from rich.console import Console

from conformance.model import Level, Verdict
from conformance.reports import LiveProgress
from conformance.results import CheckResult, RunResult

VRM = Path(sys.executable).with_name("vrm")


def _environment(home: Path, **extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("XDG_STATE_HOME", "VRM_CONFORMANCE_STATE_DIR")
    }
    environment["HOME"] = str(home)
    environment["COLUMNS"] = "200"
    environment.update(extra)
    return environment


def _vrm(cwd: Path, environment: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(VRM), *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _issuer(cwd: Path, environment: dict[str, str], *argv: str) -> dict[str, Any]:
    result = _vrm(cwd, environment, "conformance", "issuer", *argv)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_issuer_is_the_same_from_any_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    state_home = tmp_path / "xdg-state"
    environment = _environment(home, XDG_STATE_HOME=str(state_home))
    first = _issuer(tmp_path / "one", environment)
    second = _issuer(tmp_path / "two", environment)
    assert first == second
    for directory in (tmp_path / "one", tmp_path / "two"):
        assert list(directory.iterdir()) == [], "nothing is left in the working directory"
    key_file = state_home / "vrm-conformance" / "issuer.jwk"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    # ... and the command says where it keeps it (on stderr: stdout is the JSON document).
    result = _vrm(tmp_path / "one", environment, "conformance", "issuer")
    assert str(key_file) in result.stderr


def test_state_defaults_to_local_state_under_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _issuer(tmp_path / "work", _environment(home))
    assert (home / ".local" / "state" / "vrm-conformance" / "issuer.jwk").is_file()


def test_state_dir_option_and_environment_variable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    by_variable = tmp_path / "by-variable"
    environment = _environment(home, VRM_CONFORMANCE_STATE_DIR=str(by_variable))
    from_variable = _issuer(tmp_path / "work", environment)
    assert (by_variable / "issuer.jwk").is_file()
    by_option = tmp_path / "by-option"
    from_option = _issuer(tmp_path / "work", environment, "--state-dir", str(by_option))
    assert (by_option / "issuer.jwk").is_file()
    assert from_option != from_variable, "two state directories, two issuers"
    assert not (home / ".local").exists()


@pytest.mark.slow
def test_runs_from_two_directories_use_the_issuer_the_target_trusts(tmp_path: Path) -> None:
    """The vendor trusts the issuer printed in one directory; a run from another passes."""
    environment = _environment(tmp_path / "home", XDG_STATE_HOME=str(tmp_path / "xdg-state"))
    configure = tmp_path / "configure"
    _issuer(configure, environment, "--out", "issuer.json")
    key_file = tmp_path / "xdg-state" / "vrm-conformance" / "issuer.jwk"
    extra = ["--catalogue", "dealer-mayfair", "--trust-issuer", str(configure / "issuer.json")]
    with running_agent("vendor", tmp_path / "vendor", extra) as vendor:
        for name in ("first", "second"):
            work = tmp_path / name
            result = _vrm(
                work,
                environment,
                "conformance",
                "run",
                "--role",
                "vendor",
                "--target",
                vendor.base_url,
                "--check",
                "VEN-ATTESTATION-TRUSTED",
                "--quiet",
            )
            verdicts = json.loads((work / "conformance-results" / "result.json").read_text())
            shown = result.stdout + result.stderr + vendor.log()
            assert result.returncode == 0, shown
            assert [c["verdict"] for c in verdicts["checks"]] == ["pass"], shown
            assert str(key_file) in result.stderr, "the run says where the issuer key is"
            assert not (work / ".vrm-conformance").exists()


# --- skip reasons on the console summary ---


def _result(check_id: str, verdict: Verdict, reason: str = "") -> CheckResult:
    return CheckResult(
        check_id=check_id,
        title=f"the {check_id} check",
        step="wire",
        requirements=("VRM-SIG-001",),
        level=Level.MUST,
        verdict=verdict,
        reason=reason,
    )


def test_live_summary_lists_every_skip_reason() -> None:
    run = RunResult(role="vendor", target="http://127.0.0.1:9", started_at="now")
    run.results = [
        _result("SEC-A", Verdict.PASS),
        _result("VEN-ATT-1", Verdict.SKIPPED, "the target does not trust the suite's issuer"),
        _result("VEN-ATT-2", Verdict.SKIPPED, "the target does not trust the suite's issuer"),
        _result("SEC-RESTART", Verdict.SKIPPED, "needs --restart-command to restart the target"),
    ]
    output = io.StringIO()
    progress = LiveProgress(Console(file=output, width=200, color_system=None))
    progress.run_finished(run)
    summary = output.getvalue()
    assert "the target does not trust the suite's issuer" in summary
    assert "needs --restart-command to restart the target" in summary
    for check_id in ("VEN-ATT-1", "VEN-ATT-2", "SEC-RESTART"):
        assert check_id in summary
    assert "SEC-A" not in summary, "only the skipped checks are listed"


def test_quiet_run_summary_lists_skip_reasons(tmp_path: Path) -> None:
    """``run --quiet`` prints the counts and, below them, why each skipped check was skipped."""
    environment = _environment(tmp_path / "home", XDG_STATE_HOME=str(tmp_path / "xdg-state"))
    result = _vrm(
        tmp_path / "work",
        environment,
        "conformance",
        "run",
        "--role",
        "vendor",
        "--target",
        "http://127.0.0.1:9",
        "--check",
        "SEC-REPLAY-RESTART",
        "--quiet",
    )
    assert result.returncode == 4, result.stdout + result.stderr  # nothing ran
    document = json.loads((tmp_path / "work" / "conformance-results" / "result.json").read_text())
    (skipped,) = document["checks"]
    assert skipped["verdict"] == "skipped"
    assert skipped["reason"]
    assert skipped["reason"] in result.stdout
    assert "SEC-REPLAY-RESTART" in result.stdout
    # No attestation check was selected: the run needed no issuer and created no state.
    assert not (tmp_path / "xdg-state").exists()
    assert "test issuer key" not in result.stderr
