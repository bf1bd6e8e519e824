"""Faults are strategies, installed only in test mode; production runs the library's."""

from __future__ import annotations

import pytest

from vrm_agent.faults import (
    AudienceUnchecked,
    Fault,
    FaultCatalogue,
    FaultError,
    UncheckedSignatures,
)
from vrm_agent.strategies import PRODUCTION, LibraryVerifier, Strategies


def test_production_strategies_are_the_librarys() -> None:
    assert isinstance(PRODUCTION.verifier, LibraryVerifier)
    assert Strategies() == PRODUCTION


def test_faults_compose_each_replacing_one_part() -> None:
    catalogue: FaultCatalogue[Strategies] = FaultCatalogue(
        [
            Fault("a", "audience", lambda s: s.but(verifier=AudienceUnchecked(s.verifier))),
            Fault("b", "signature", lambda s: s.but(verifier=UncheckedSignatures(s.verifier))),
        ]
    )
    weakened = catalogue.apply(PRODUCTION, ["b", "a"], test_mode=True)
    assert isinstance(weakened.verifier, UncheckedSignatures)
    assert isinstance(weakened.verifier.inner, AudienceUnchecked)
    assert weakened.replay is PRODUCTION.replay


def test_faults_are_refused_outside_test_mode_and_unknown_ones_everywhere() -> None:
    catalogue: FaultCatalogue[Strategies] = FaultCatalogue(
        [Fault("a", "audience", lambda s: s.but(verifier=AudienceUnchecked(s.verifier)))]
    )
    with pytest.raises(FaultError, match="test-mode"):
        catalogue.apply(PRODUCTION, ["a"], test_mode=False)
    with pytest.raises(FaultError, match="unknown"):
        catalogue.apply(PRODUCTION, ["b"], test_mode=True)
    assert catalogue.apply(PRODUCTION, [], test_mode=False) is PRODUCTION
