"""The sharing policy's decisions (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reference_buyer.policy import (
    Decision,
    check_nothing_identifying,
    duration_days,
    evaluate_service_notice,
    evaluate_terms,
    load_policy,
)
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.models import TermsAssertionBody

POLICY = load_policy()
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _request(item: str, purposes: list[str], period: str = "P2Y", **extra: Any) -> dict[str, Any]:
    return {
        "item": item,
        "purposes": purposes,
        "retention": {"period": period},
        "required": False,
        **extra,
    }


def _assertion(
    *requests: dict[str, Any],
    will_not_do: list[str] | None = None,
    categories: list[str] | None = None,
    valid_until: str = "2026-12-23T10:00:00Z",
) -> TermsAssertionBody:
    body: dict[str, Any] = {
        "terms": {
            "id": "dealer-terms",
            "version": "1.0",
            "url": "https://dealer.example/vrm/terms/dealer-terms/1.0",
            "digest": "sha-256:" + "A" * 43,
        },
        "party": {"id": "https://dealer.example", "name": "Dealer", "role": "vendor"},
        "requests": list(requests),
        "commitments": {
            "willDo": ["use the data only for the purposes listed"],
            "willNotDo": will_not_do if will_not_do is not None else ["sell personal data"],
        },
        "validUntil": valid_until,
    }
    if categories is not None:
        body["notificationCategories"] = categories
    return TermsAssertionBody.model_validate(body)


def test_acceptable_terms_are_accepted_with_notifications_safety_and_technical_only() -> None:
    decision = evaluate_terms(
        _assertion(
            _request("contact.email", ["servicing"]), _request("vehicle.model", ["warranty"], "P5Y")
        ),
        POLICY,
        now=NOW,
    )
    assert decision.decision is Decision.ACCEPT
    assert [i.item for i in decision.accepted] == ["contact.email", "vehicle.model"]
    assert decision.notifications == ("safety", "technical")


def test_marketing_purpose_and_long_retention_make_it_accept_in_part_with_reasons() -> None:
    decision = evaluate_terms(
        _assertion(
            _request("vehicle.model", ["servicing"]),
            _request("contact.phone", ["marketing"]),
            _request("contact.email", ["servicing", "marketing"]),
            _request("location.home-area", ["servicing"], "P10Y"),
        ),
        POLICY,
        now=NOW,
    )
    assert decision.decision is Decision.ACCEPT_IN_PART
    by_item = {i.item: i for i in decision.items}
    assert by_item["vehicle.model"].accepted
    assert not by_item["contact.phone"].accepted
    assert "purpose 'marketing' not accepted" in by_item["contact.phone"].reasons
    # Purposes are cut down to the allowed ones rather than the item refused.
    assert by_item["contact.email"].accepted
    assert by_item["contact.email"].purposes == ("servicing",)
    assert not by_item["location.home-area"].accepted
    assert any("exceeds" in reason for reason in by_item["location.home-area"].reasons)


def test_terms_that_do_not_rule_out_selling_are_refused_entirely() -> None:
    decision = evaluate_terms(
        _assertion(_request("contact.email", ["servicing"]), will_not_do=["spam you"]),
        POLICY,
        now=NOW,
    )
    assert decision.decision is Decision.REFUSE
    assert not decision.accepted
    assert any("sell" in reason for reason in decision.reasons)


def test_expired_terms_are_refused() -> None:
    body = _assertion(_request("contact.email", ["servicing"]), valid_until="2026-11-01T00:00:00Z")
    assert evaluate_terms(body, POLICY, now=NOW).decision is Decision.REFUSE


def test_recipient_of_unaccepted_role_refuses_the_item() -> None:
    request = _request(
        "vehicle.vin", ["warranty"], recipients=[{"name": "Data Broker Ltd", "role": "data-broker"}]
    )
    decision = evaluate_terms(_assertion(request), POLICY, now=NOW)
    assert decision.decision is Decision.REFUSE
    assert "data-broker" in decision.items[0].reasons[-1]


def test_never_shared_category_is_refused() -> None:
    decision = evaluate_terms(_assertion(_request("finance.income", ["billing"])), POLICY, now=NOW)
    assert decision.decision is Decision.REFUSE


def test_category_without_a_rule_is_left_to_the_individual_and_resolved_as_refused() -> None:
    strict = type(POLICY).from_mapping(
        {
            "terms": {
                "allowed_purposes": ["servicing"],
                "forbidden_uses": [],
                "max_retention": {"contact": "P1Y"},
            }
        }
    )
    decision = evaluate_terms(
        _assertion(
            _request("contact.email", ["servicing"], "P1Y"),
            _request("vehicle.model", ["servicing"]),
        ),
        strict,
        now=NOW,
    )
    assert decision.decision is Decision.ASK
    resolved = decision.resolved()
    assert resolved.decision is Decision.ACCEPT_IN_PART
    assert [i.item for i in resolved.refused] == ["vehicle.model"]


def test_notification_preferences_stay_within_what_the_terms_offer() -> None:
    decision = evaluate_terms(
        _assertion(_request("contact.email", ["servicing"]), categories=["safety", "promotions"]),
        POLICY,
        now=NOW,
    )
    assert decision.notifications == ("safety",)


def test_service_notice_scheduled_maintenance_accepted_tyres_declined() -> None:
    decision = evaluate_service_notice(["scheduled-maintenance", "tyre-replacement"], POLICY)
    assert decision.decision == "accept-in-part"
    assert decision.accepted == ("scheduled-maintenance",)
    assert decision.declined[0][0] == "tyre-replacement"
    assert "two years" in decision.declined[0][1]
    assert evaluate_service_notice(["scheduled-maintenance"], POLICY).decision == "accept"
    assert evaluate_service_notice(["tyre-replacement"], POLICY).decision == "decline"


def test_identifying_members_are_refused_in_an_intentcast() -> None:
    check_nothing_identifying({"intent": {"features": [{"name": "isofix"}]}})
    # A body model is judged in its wire form.
    check_nothing_identifying(sally_rfi_body(NOW))
    with pytest.raises(LocalProtocolError) as refused:
        check_nothing_identifying({"tradeIn": {"item": {"registration": "SX19 ABC"}}})
    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    assert refused.value.path == "/body/tradeIn/item/registration"


def test_durations_compare_as_upper_bounds() -> None:
    assert duration_days("P1Y") == 366
    assert duration_days("P2M") == 62
    assert duration_days("P1W1D") == 8
    with pytest.raises(ValueError, match="ISO 8601"):
        duration_days("two years")


def test_policy_file_is_read(tmp_path: Any) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[notifications]\nallowed = ["safety"]\n[terms.max_retention]\n"*" = "P1Y"\n')
    policy = load_policy(path)
    assert policy.notifications == ("safety",)
    assert policy.retention_limit("contact.email") == "P1Y"
    assert POLICY.retention_limit("contact.email") == "P3Y"
