"""The Shopify Flow triggers a rescore queues: one outbox row (``flow_trigger_events``) per real
change of one customer, written in the rescore's transaction; the sync sends them
(``app.sync.flow``). See docs/flow.md.

A change is real when the customer's behaviour (an order, or time passing without one) caused it.
A rescore that applies other models (a refit, or a switch between the model and the segment
formula) or other settings (scoring method, window, segment grid, CLV horizon) reclassifies
customers without anything having happened to them: those moves queue nothing.

* stage: the stage changes recorded with cause "behaviour" (``compute.StageMoves``), as the stage
  history records them;
* RFM segment: unless this run's segment settings (method, window, grid) differ from those the
  stored segments were decided by (the rescore's answer, the segment history's cause "settings");
* churn risk crossing a ``CHURN_RISK_THRESHOLDS`` level: unless the models changed;
* CLV tier: unless the models, the horizon or the segment settings changed (the segment formula,
  and so the tiers, follow the segments).

Only triggers a shop uses are queued (Flow's trigger lifecycle callback,
``flow_trigger_usage``); a shop without any enabled workflow costs one indexed read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.kit.sql import upsert
from app.models import CustomerScore, FlowTriggerEvent, FlowTriggerUsage, Shop
from app.models.base import table_of
from app.settings.schemas import ScoringSettings
from app.vocabulary import (
    CHURN_FELL,
    CHURN_RISK_THRESHOLDS,
    CHURN_ROSE,
    CLV_TIER_LABELS,
    CLV_TIERS,
    FLOW_CHURN_RISK_CROSSED,
    FLOW_CLV_TIER_CHANGED,
    FLOW_CUSTOMER_FIELD,
    FLOW_SEGMENT_CHANGED,
    FLOW_STAGE_CHANGED,
    NO_STAGE_LABEL,
    RFM_SEGMENT_NAMES,
    STAGE_LABELS,
    STAGE_NAMES,
)

Array = npt.NDArray[Any]
BASIS_KEY: Final = "flow_basis"
"""Where the metrics JSON keeps the settings the stored scores were computed with."""
BEHAVIOUR: Final = 0
READ_CHUNK: Final = 5000


@dataclass(frozen=True, slots=True)
class Reclassified:
    """What this run changes without any customer having done anything."""

    segments: bool
    churn: bool
    tiers: bool


def basis_of(settings: ScoringSettings) -> dict[str, Any]:
    """The settings besides the segment settings that reclassify without behaviour: the CLV
    horizon (the tiers). Whether the segment settings changed is the rescore's one answer, the
    same that labels the segment history's cause."""
    return {"clv_horizon_days": settings.clv_horizon_days}


def reclassified(
    stored_metrics: dict[str, Any] | None,
    basis: dict[str, Any],
    *,
    models_changed: bool,
    segments_changed: bool,
) -> Reclassified:
    """A stored basis missing (scores from before the triggers existed) counts as changed."""
    before = (stored_metrics or {}).get(BASIS_KEY)
    horizon = before is None or before.get("clv_horizon_days") != basis["clv_horizon_days"]
    return Reclassified(
        segments=segments_changed, churn=models_changed, tiers=models_changed or horizon or segments_changed
    )


def enabled_triggers(session: Session, shop_id: int) -> frozenset[str]:
    return frozenset(
        session.scalars(
            select(FlowTriggerUsage.handle).where(
                FlowTriggerUsage.shop_id == shop_id, FlowTriggerUsage.enabled.is_(True)
            )
        )
    )


def _previous(
    session: Session, shop_id: int, ids: Sequence[int]
) -> dict[int, tuple[int | None, str | None, float | None]]:
    """(segment code, CLV tier, churn risk) the customers' stored rows hold, read before the new
    rows go in (a full rescore does not load the stored predictions)."""
    out: dict[int, tuple[int | None, str | None, float | None]] = {}
    names = {name: code for code, name in enumerate(RFM_SEGMENT_NAMES)}
    for start in range(0, len(ids), READ_CHUNK):
        chunk = list(ids[start : start + READ_CHUNK])
        rows = session.execute(
            select(
                CustomerScore.customer_id,
                CustomerScore.segment,
                CustomerScore.clv_tier,
                CustomerScore.churn_risk,
            ).where(CustomerScore.shop_id == shop_id, CustomerScore.customer_id.in_(chunk))
        )
        for customer_id, segment, tier, churn in rows:
            risk = None if churn is None else float(churn)
            out[int(customer_id)] = (names.get(segment) if segment else None, tier, risk)
    return out


def _money(value: float) -> float:
    return round(float(value), 2)


def _tier_label(tier: str | None) -> str:
    return CLV_TIER_LABELS[tier] if tier else NO_STAGE_LABEL


def trigger_events(
    session: Session,
    shop_id: int,
    cust: dict[str, Array],
    columns: dict[str, Array],
    synced_changed: Array,
    moves: Any,
    *,
    enabled: frozenset[str],
    why: Reclassified,
    stamp_us: int,
) -> list[dict[str, Any]]:
    """The outbox rows of this rescore (``moves``: ``compute.StageMoves``)."""
    if not enabled:
        return []
    currency = session.scalar(select(Shop.currency_code).where(Shop.shop_id == shop_id)) or ""
    ids = cust["customer_id"]
    position = {int(c): i for i, c in enumerate(ids.tolist())}
    events: list[dict[str, Any]] = []

    def add(handle: str, customer_id: int, fields: dict[str, Any], suffix: str = "") -> None:
        payload = {FLOW_CUSTOMER_FIELD: customer_id, **fields}
        events.append(
            {
                "shop_id": shop_id,
                "event_key": f"{handle}:{customer_id}:{stamp_us}{suffix}",
                "handle": handle,
                "customer_id": customer_id,
                "payload": json.dumps(payload, separators=(",", ":")),
            }
        )

    def common(i: int) -> dict[str, Any]:
        return {
            "Predicted CLV": _money(columns["predicted_clv"][i]),
            "Churn risk": _money(columns["churn_risk"][i]),
            "Currency": currency,
        }

    if FLOW_STAGE_CHANGED in enabled:
        for customer_id, before, after, cause in zip(
            moves.customer_id.tolist(),
            moves.from_stage.tolist(),
            moves.to_stage.tolist(),
            moves.cause.tolist(),
            strict=True,
        ):
            if cause != BEHAVIOUR or before < 0:
                continue
            i = position[int(customer_id)]
            add(
                FLOW_STAGE_CHANGED,
                int(customer_id),
                {
                    "Previous stage": STAGE_LABELS[STAGE_NAMES[before]],
                    "New stage": STAGE_LABELS[STAGE_NAMES[after]],
                    **common(i),
                },
            )

    changed = np.flatnonzero(synced_changed & cust["scored"])
    want_segments = FLOW_SEGMENT_CHANGED in enabled and not why.segments
    want_tiers = FLOW_CLV_TIER_CHANGED in enabled and not why.tiers
    want_churn = FLOW_CHURN_RISK_CROSSED in enabled and not why.churn
    wanted = want_segments or want_tiers or want_churn
    previous = _previous(session, shop_id, ids[changed].tolist()) if changed.size and wanted else {}
    for i in changed.tolist():
        customer_id = int(ids[i])
        old = previous.get(customer_id)
        if want_segments and old is not None:
            new_segment = int(columns["segment"][i])
            if old[0] is not None and old[0] != new_segment:
                add(
                    FLOW_SEGMENT_CHANGED,
                    customer_id,
                    {
                        "Previous segment": RFM_SEGMENT_NAMES[old[0]],
                        "New segment": RFM_SEGMENT_NAMES[new_segment],
                        "Recency score": int(columns["recency_score"][i]),
                        "Frequency score": int(columns["frequency_score"][i]),
                        "Monetary score": int(columns["monetary_score"][i]),
                        **common(i),
                    },
                )
        if want_tiers and old is not None:
            code = int(columns["clv_tier"][i])
            new_tier = None if code <= 0 else CLV_TIERS[code - 1]
            if new_tier != old[1]:
                add(
                    FLOW_CLV_TIER_CHANGED,
                    customer_id,
                    {"Previous tier": _tier_label(old[1]), "New tier": _tier_label(new_tier), **common(i)},
                )
        if want_churn and old is not None and old[2] is not None:
            before_risk = old[2]
            after_risk = float(columns["churn_risk"][i])
            for level in _crossed(before_risk, after_risk, CHURN_RISK_THRESHOLDS):
                stage = int(columns["stage"][i])
                add(
                    FLOW_CHURN_RISK_CROSSED,
                    customer_id,
                    {
                        "Previous churn risk": _money(before_risk),
                        "Churn risk": _money(after_risk),
                        "Threshold": level,
                        "Direction": CHURN_ROSE if after_risk > before_risk else CHURN_FELL,
                        "Lifecycle stage": STAGE_LABELS[STAGE_NAMES[stage]] if stage >= 0 else NO_STAGE_LABEL,
                        "Predicted CLV": _money(columns["predicted_clv"][i]),
                        "Currency": currency,
                    },
                    suffix=f":{level}",
                )
    return events


def _crossed(before: float, after: float, levels: Iterable[float]) -> list[float]:
    """The levels between ``before`` and ``after``: rising means reaching it (>=), falling means
    going under it."""
    return [level for level in levels if (before < level <= after) or (after < level <= before)]


def queue(session: Session, events: list[dict[str, Any]], created_at: Any) -> int:
    """Insert the rows; a change already queued (same key) is left as it is."""
    if not events:
        return 0
    rows = [{**e, "created_at": created_at, "status": "pending", "attempts": 0} for e in events]
    session.execute(upsert(session, table_of(FlowTriggerEvent), keys=("shop_id", "event_key")), rows)
    return len(rows)
