"""The vendor's handlers: one per message type a vendor (or a third party) takes."""

from __future__ import annotations

import pytest

from reference_vendor.handlers import HANDLERS
from vrm_protocol.message_types import accepted_by
from vrm_protocol.vocabulary import Role


@pytest.mark.parametrize("sells", [True, False])
def test_the_vendor_takes_every_type_its_role_takes(sells: bool) -> None:
    # The vendor's handlers cover what a vendor, or a third party that sells
    # nothing, takes in its inbox (checked again when an agent starts).
    HANDLERS.check_complete(accepted_by(Role.VENDOR, sells=sells))
    assert HANDLERS.types == accepted_by(Role.VENDOR, sells=True)
