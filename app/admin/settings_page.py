"""The settings page: the form's fields and choices, what the merchant typed read back into the
settings service's changes with every problem at its own field, and, before a save that rewrites
what the app wrote to Shopify, how many customers it would rewrite there (a confirm step).

Errors are told at their field in plain words that do not repeat the field's name (the field's
label stands beside them); see docs/settings-and-status.md."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.admin import repository, service
from app.settings.schemas import (
    METHODS,
    PREFIX_FIELDS,
    PREFIX_NAMES,
    ScoringSettings,
    SettingsError,
    grid_to_json,
    validate,
)
from app.settings.service import get_settings
from app.vocabulary import DEFAULT_GRID, SEGMENT_NAMES, SEGMENT_TAGS, THIRDS_GROUP_NAMES, THIRDS_GROUP_SUMS

GRID_ROWS = (5, 4, 3, 2, 1)
GRID_COLUMNS = (1, 2, 3, 4, 5)
TEXT_FIELDS = (
    "scoring_method",
    "window_days",
    "clv_horizon_days",
    "lifespan_years",
    "cac",
    "conversion_rate",
    "rfm_tag_prefix",
    "stage_tag_prefix",
    "clv_tag_prefix",
)
FIELD_LABELS = {
    "scoring_method": "Scoring method",
    "window_days": "Window",
    "clv_horizon_days": "CLV horizon",
    "lifespan_years": "Average lifespan",
    "cac": "Customer acquisition cost",
    "conversion_rate": "Conversion rate",
    "rfm_tag_prefix": "RFM tag prefix",
    "stage_tag_prefix": "Stage tag prefix",
    "clv_tag_prefix": "CLV tag prefix",
    "segment_grid": "Segment grid",
    "sync_enabled": "Sync",
    "reset_grid": "Reset the grid",
}
RESET_GRID = "reset_grid"
CONFIRM = "confirm_rewrite"

WINDOW_HELP = (
    "With a window, the scores rank the buyers who ordered within it: frequency and monetary count "
    "their orders and spend in the window, recency the days since their last order. A buyer with no "
    "order in the window is not ranked: they score 1 on frequency and monetary, and by quintiles 1 on "
    "recency too (so they fall in the grid's R 1, FM 1 cell); by thirds recency keeps its month bins. "
    "Empty: every order counts, and every buyer is ranked."
)


def method_help() -> str:
    groups = ", ".join(f"{low}–{high} {name}" for name, (low, high) in THIRDS_GROUP_SUMS.items())
    return (
        "Quintiles: each score 1–5 by the share of buyers strictly worse on it (5 is best), and the "
        "segment by the grid below. Thirds: each score 1–3, recency 3 for an order in the last 4 months, "
        "2 for 4 to 8 months, 1 for older; frequency and monetary by the lower, middle or upper third of "
        f"the range of your buyers' values; the group by R + F + M: {groups}. The group is the segment "
        "written to Shopify (tag, metafield, segment) and shown on every page."
    )


def choices() -> dict[str, Any]:
    return {
        "methods": [
            (
                m,
                "Quintiles (1–5, as Shopify does)"
                if m == "quintile"
                else f"Thirds (1–3, {'/'.join(THIRDS_GROUP_NAMES)})",
            )
            for m in METHODS
        ],
        "method_help": method_help(),
        "window_help": WINDOW_HELP,
        "conversion_help": "A share (0.02) or a percentage (2%); empty = not set.",
        "segment_names": SEGMENT_NAMES,
        "grid_rows": GRID_ROWS,
        "grid_columns": GRID_COLUMNS,
        "labels": FIELD_LABELS,
        "example_segment_tag": SEGMENT_TAGS[SEGMENT_NAMES[0]],
        "default_grid": {f"{r}_{fm}": name for (r, fm), name in DEFAULT_GRID.items()},
    }


def plain_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def form_values(s: ScoringSettings) -> dict[str, Any]:
    values: dict[str, Any] = {k: plain_number(getattr(s, k)) for k in TEXT_FIELDS}
    values["sync_enabled"] = s.sync_enabled
    values["grid"] = {f"{r}_{fm}": name for (r, fm), name in s.segment_grid.items()}
    return values


def form_echo(form: dict[str, str]) -> dict[str, Any]:
    """What the merchant typed, shown again next to the errors (or for confirmation)."""
    values: dict[str, Any] = {k: form.get(k, "") for k in TEXT_FIELDS}
    values["sync_enabled"] = "sync_enabled" in form
    values["grid"] = {f"{r}_{fm}": form.get(f"grid_{r}_{fm}", "") for r in GRID_ROWS for fm in GRID_COLUMNS}
    return values


@dataclass(frozen=True, slots=True)
class FieldError:
    """A problem in plain words, shown at its field (``message``) and in the summary above the form
    (``label``: ``message``), which links to the field."""

    field: str | None
    message: str

    @property
    def label(self) -> str | None:
        return FIELD_LABELS.get(self.field or "", self.field)

    def __str__(self) -> str:
        return f"{self.label}: {self.message}" if self.field else self.message

    @staticmethod
    def of(exc: SettingsError, key: str | None = None) -> FieldError:
        detail = exc.detail[:1].upper() + exc.detail[1:]
        return FieldError(exc.field or key, detail if detail.endswith(".") else f"{detail}.")


def parse(form: dict[str, str]) -> tuple[dict[str, Any], list[FieldError]]:
    """The settings service's changes from the form, and every field's problem (each field is
    checked on its own, so the merchant sees all the problems at once)."""
    changes: dict[str, Any] = {k: form.get(k, "").strip() for k in TEXT_FIELDS if k in form}
    changes["sync_enabled"] = "sync_enabled" in form
    if any(f"grid_{r}_{fm}" in form for r in GRID_ROWS for fm in GRID_COLUMNS):
        changes["segment_grid"] = {
            f"{r},{fm}": form.get(f"grid_{r}_{fm}", "") for r in GRID_ROWS for fm in GRID_COLUMNS
        }
    # the prefixes are checked together: none may begin another
    prefixes: dict[str, Any] = {k: changes[k] for k in PREFIX_FIELDS if k in changes}
    errors: list[FieldError] = []
    for key, value in changes.items():
        try:
            validate(prefixes if key in PREFIX_FIELDS else {key: value})
        except SettingsError as exc:
            if exc.field in (None, key):
                errors.append(FieldError.of(exc, key))
    return changes, errors


def reset_grid_changes(form: dict[str, str]) -> dict[str, Any]:
    """The "reset to Shopify's default grid" form: only the grid changes."""
    if form.get(RESET_GRID) != "1":
        raise SettingsError("the reset form must carry reset_grid=1; nothing was changed", field=RESET_GRID)
    return {"segment_grid": {f"{r},{fm}": name for (r, fm), name in DEFAULT_GRID.items()}}


# -- what a save would rewrite in Shopify ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rewrite:
    """How many customers' tags or metafields in Shopify a save would rewrite (at most, by the last
    scoring and the app's record of what it wrote), and why."""

    customers: int
    reasons: list[str] = field(default_factory=list)
    token: str = ""
    """Names this exact change: the confirmation the form sends back."""


@dataclass(frozen=True, slots=True)
class Proposal:
    before: ScoringSettings
    after: ScoringSettings
    rewrite: Rewrite | None
    """None: the save rewrites nothing in Shopify (or the sync is off), so it needs no confirmation."""


def _token(before: ScoringSettings, after: ScoringSettings) -> str:
    def plain(s: ScoringSettings) -> list[Any]:
        return [str(getattr(s, k)) for k in TEXT_FIELDS] + [grid_to_json(s.segment_grid), s.sync_enabled]

    return hashlib.sha256(json.dumps([plain(before), plain(after)]).encode()).hexdigest()[:24]


def _moved_by_grid(metrics: dict[str, Any] | None, before: ScoringSettings, after: ScoringSettings) -> int:
    """Customers (by the last full scoring's heat map) in cells whose segment the new grid changes."""
    grid = (metrics or {}).get("rfm_grid") or {}
    if grid.get("method") not in (None, "quintile") or "customers" not in grid:
        return 0
    moved = 0
    for row, counts in zip(grid["rows_r"], grid["customers"], strict=True):
        for fm, count in zip(grid["columns_fm"], counts, strict=True):
            if before.segment_grid[(row, fm)] != after.segment_grid[(row, fm)]:
                moved += int(count)
    return moved


def propose(session: Session, shop_id: int, changes: dict[str, Any]) -> Proposal:
    """The settings after ``changes`` (raises SettingsError) and what saving them rewrites in Shopify."""
    before = get_settings(session, shop_id)
    after = validate(changes, before)
    if not after.sync_enabled:
        return Proposal(before, after, None)
    row = repository.metrics_row(session, shop_id)
    scored = row.customers_scored if row is not None else 0
    reasons: list[tuple[int, str]] = []
    everyone = f"the {scored:,} scored customers"
    if after.scoring_method != before.scoring_method:
        reasons.append((scored, f"a new scoring method gives each of {everyone} a new segment"))
    elif after.scoring_method == "quintile" and dict(after.segment_grid) != dict(before.segment_grid):
        moved = _moved_by_grid(repository.metrics(session, shop_id), before, after)
        reasons.append((moved, f"{moved:,} customers move to another segment (by the last scoring)"))
    if after.window_days != before.window_days:
        reasons.append((scored, f"a new window may change the scores of any of {everyone}"))
    if after.clv_horizon_days != before.clv_horizon_days:
        reasons.append((scored, f"a new CLV horizon changes the predicted CLV of {everyone}"))
    moved_prefixes = [k for k in PREFIX_FIELDS if getattr(after, k) != getattr(before, k)]
    if moved_prefixes:
        tagged = service.cleanup_offer(session, shop_id).counts.customers
        names = " and ".join(PREFIX_NAMES[k] for k in moved_prefixes)
        reasons.append((tagged, f"the {names} changes the app's tags of {tagged:,} customers"))
    if not before.sync_enabled:
        reasons.append((scored, f"turning the sync on writes the scores of up to {scored:,} customers"))
    customers = max((n for n, _ in reasons), default=0)
    if customers == 0:
        return Proposal(before, after, None)
    why = [words for n, words in reasons if n]
    return Proposal(before, after, Rewrite(customers, why, _token(before, after)))
