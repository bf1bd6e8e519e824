"""The manufacturer's retention touchpoints (seed 004): its catalogue, and the rule
that sends each only within her notification preferences and the data she shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_vendor.catalogue import CatalogueError, Touchpoint, load_catalogue
from reference_vendor.retention import blocked_by
from reference_vendor.store import Preferences
from vrm_protocol.message_types.service_notice import KIND_CATEGORIES


def test_the_manufacturer_catalogue_has_the_seed_004_touchpoints() -> None:
    catalogue = load_catalogue("manufacturer")
    assert catalogue.role == "manufacturer"
    assert not catalogue.sells
    codes = [t.code for t in catalogue.touchpoints]
    assert codes == [
        "new-model-information",
        "test-drive-invitation",
        "warranty-extension",
        "loyalty",
        "area-promotion",
    ]
    for touchpoint in catalogue.touchpoints:
        # spec §6.9: every touchpoint is of a category its kind allows, one the
        # manufacturer offers notices in.
        assert touchpoint.category in KIND_CATEGORIES[touchpoint.kind]
        assert touchpoint.category in catalogue.notification_categories
        if touchpoint.programme is not None:
            assert catalogue.programme(touchpoint.programme) is not None
    [area] = [t for t in catalogue.touchpoints if t.code == "area-promotion"]
    assert area.needs == ("location.home-area",)
    assert "location.home-area" in {r.item for r in catalogue.data_requests}


def test_a_touchpoint_of_a_category_its_kind_does_not_allow_is_refused(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "reference_vendor" / "catalogues"
    document = (source / "manufacturer.toml").read_text()
    mislabelled = document.replace(
        'kind = "warranty-extension"\ncategory = "warranty"',
        'kind = "warranty-extension"\ncategory = "technical"',
    )
    assert mislabelled != document
    path = tmp_path / "mislabelled.toml"
    path.write_text(mislabelled)
    path.chmod(0o600)
    with pytest.raises(CatalogueError, match="is not of category technical"):
        load_catalogue(str(path))


PROMOTION = Touchpoint("area-promotion", "other", "promotions", "Offers", ("location.home-area",))
NEWS = Touchpoint("new-model-information", "other", "new-products", "A new model")


def test_nothing_before_she_chose_her_notices() -> None:
    reason = blocked_by(NEWS, Preferences(None), frozenset())
    assert reason == "the individual has not chosen notification categories"


def test_a_category_she_did_not_allow_is_not_sent() -> None:
    allowed = Preferences(("new-products", "events"))
    assert blocked_by(NEWS, allowed, frozenset()) is None
    assert blocked_by(PROMOTION, allowed, frozenset({"location.home-area"})) == (
        "the individual does not allow promotions notifications"
    )


def test_a_promotion_for_her_area_needs_her_area() -> None:
    allowed = Preferences(("promotions",))
    assert blocked_by(PROMOTION, allowed, frozenset()) == (
        "it depends on location.home-area, which the individual did not share"
    )
    assert blocked_by(PROMOTION, allowed, frozenset({"location.home-area"})) is None


def test_after_her_exit_the_state_machine_judges_the_categories() -> None:
    # Her re-engagement preferences replace her notification categories (spec §7.5);
    # the data a touchpoint depends on is still needed (and was deleted at the exit).
    assert blocked_by(NEWS, Preferences(()), frozenset(), exited=True) is None
    assert blocked_by(PROMOTION, Preferences(()), frozenset(), exited=True) is not None
