"""The tier-policy registry: what differs between tiers is data, not routing.

Each tier's workspace asks its policy which child tier it has and which
features it shows. Adding a tier (say, community below street) is one more
entry here and in ``TIERS``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l

from portal.models.units import TIERS


@dataclass(frozen=True)
class TierPolicy:
    tier: str
    label: object  # lazy string
    child_tier: Optional[str]
    #: Feature names the workspace shows, in menu order. Only built features. "dashboard": the
    #: consolidated view (a street's shows its own figures: it has no units below to rank).
    features: tuple[str, ...]


TIER_POLICIES: dict[str, TierPolicy] = {
    "province": TierPolicy("province", _l("Province"), "city",
                           ("home", "children", "dashboard", "meetings", "tasks", "activities", "team", "accounts")),
    "city": TierPolicy("city", _l("City"), "district", ("home", "children", "dashboard", "meetings", "tasks", "activities", "team", "accounts")),
    "district": TierPolicy("district", _l("District / county"), "street",
                           ("home", "children", "dashboard", "meetings", "tasks", "activities", "team", "accounts")),
    "street": TierPolicy("street", _l("Street / township"), None, ("home", "dashboard", "meetings", "tasks", "activities", "team", "accounts")),
}

assert tuple(TIER_POLICIES) == TIERS, "every tier needs a policy"


def policy_for(tier: str) -> TierPolicy:
    return TIER_POLICIES[tier]


def tier_label(tier: str) -> str:
    return str(TIER_POLICIES[tier].label)
