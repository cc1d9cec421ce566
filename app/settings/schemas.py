"""A shop's settings as the merchant edits them on the settings page: the record and its defaults,
the validation rules, and the error that names the field in plain words."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

from app.kit.errors import AppError
from app.vocabulary import (
    DEFAULT_CLV_TAG_PREFIX,
    DEFAULT_GRID,
    DEFAULT_RFM_TAG_PREFIX,
    DEFAULT_STAGE_TAG_PREFIX,
    LONGEST_TAG_SUFFIX,
    RFM_SEGMENT_NAMES,
    SCORING_METHODS,
    SEGMENT_PLAYS,
    Grid,
    GridError,
    slug,
    validate_grid,
)

METHODS: Final = SCORING_METHODS
MAX_WINDOW_DAYS: Final = 3660
MAX_HORIZON_DAYS: Final = 3660
MAX_LIFESPAN_YEARS: Final = 50.0
TAG_PREFIX_MAX: Final = 32
"""The stored column's width; with the longest tag the app writes after it, far under Shopify's
255 characters a tag."""
assert TAG_PREFIX_MAX + len(LONGEST_TAG_SUFFIX) <= 255
TAG_SEPARATORS: Final = (":", "-", "_")
_TAG_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
PREFIX_FIELDS: Final = ("rfm_tag_prefix", "stage_tag_prefix", "clv_tag_prefix")
PREFIX_NAMES: Final = {k: k.replace("_", " ") for k in PREFIX_FIELDS}


class SettingsError(AppError):
    """Settings the merchant entered that cannot be saved; the message says which and why, and
    ``field`` names the form field when there is one."""

    status_code = 422

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    scoring_method: str = "quintile"
    window_days: int | None = None
    """Frequency and monetary over the last N days; None: all time."""
    segment_grid: Grid = field(default_factory=lambda: DEFAULT_GRID)
    clv_horizon_days: int = 365
    lifespan_years: float = 3.0
    cac: Decimal | None = None
    conversion_rate: float | None = None
    rfm_tag_prefix: str = DEFAULT_RFM_TAG_PREFIX
    stage_tag_prefix: str = DEFAULT_STAGE_TAG_PREFIX
    clv_tag_prefix: str = DEFAULT_CLV_TAG_PREFIX
    sync_enabled: bool = True

    def affects_scores(self, other: ScoringSettings) -> bool:
        """True when going from ``other`` to this changes stored scores (tags and sync do not)."""
        keys = (
            "scoring_method",
            "window_days",
            "clv_horizon_days",
            "lifespan_years",
            "cac",
            "conversion_rate",
        )
        return any(getattr(self, k) != getattr(other, k) for k in keys) or dict(self.segment_grid) != dict(
            other.segment_grid
        )


DEFAULTS: Final = ScoringSettings()


def grid_to_json(grid: Grid) -> str:
    return json.dumps({f"{r},{fm}": name for (r, fm), name in sorted(grid.items())}, sort_keys=True)


def grid_from_json(text: str) -> Grid:
    raw = json.loads(text)
    return MappingProxyType({tuple(int(p) for p in key.split(",")): name for key, name in raw.items()})  # type: ignore[misc]


def _grid(value: Any) -> Grid:
    key = "segment_grid"
    if isinstance(value, str):
        try:
            value = grid_from_json(value)
        except (ValueError, AttributeError) as exc:
            raise SettingsError(f"is not valid JSON of 'R,FM' cells: {exc}", field=key) from exc
    if isinstance(value, Mapping):
        try:
            value = {
                (int(k[0]), int(k[1])) if not isinstance(k, str) else tuple(int(p) for p in k.split(",")): v
                for k, v in value.items()
            }
        except (ValueError, TypeError, IndexError) as exc:
            raise SettingsError("cells must be written 'R,FM', e.g. '5,4'", field=key) from exc
    try:
        return MappingProxyType(validate_grid(value))
    except GridError as exc:
        raise SettingsError(str(exc).removeprefix("segment grid "), field=key) from exc


def _whole(value: Any, key: str, low: int, high: int, *, empty: str = "") -> int:
    words = f"must be a whole number of days from {low} to {high}{empty}"
    if isinstance(value, bool) or not isinstance(value, int | str | float | Decimal):
        raise SettingsError(words, field=key)
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise SettingsError(words, field=key) from exc
    if not number.is_finite() or number != number.to_integral_value() or not low <= number <= high:
        raise SettingsError(words, field=key)
    return int(number)


def _number(value: Any, key: str, low: float, high: float, words: str) -> float:
    """A number above ``low`` and at most ``high``; ``words`` say so in the merchant's terms."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(words, field=key) from exc
    if isinstance(value, bool) or not math.isfinite(number) or not low < number <= high:
        raise SettingsError(words, field=key)
    return number


CONVERSION_WORDS: Final = (
    "must be a share above 0 and at most 1 (0.02), or a percentage above 0 and at most 100 (2%), or empty"
)


def _rate(value: Any) -> float:
    """The conversion rate: a share (0.02) or a percentage ("2%", "2 %")."""
    key = "conversion_rate"
    if isinstance(value, str) and value.strip().endswith("%"):
        percent = _number(value.strip()[:-1].strip(), key, 0.0, 100.0, CONVERSION_WORDS)
        return float(Decimal(str(percent)) / 100)
    return _number(value, key, 0.0, 1.0, CONVERSION_WORDS)


def _prefix(value: Any, key: str) -> str:
    """A tag prefix: it ends in a separator, so that the app's tags can be told from a merchant's
    own ones sharing their first letters ("v-new" is the app's, "vip" never is)."""
    if not isinstance(value, str) or not value.strip():
        raise SettingsError("must not be empty", field=key)
    value = value.strip()
    if len(value) > TAG_PREFIX_MAX:
        raise SettingsError(f"must be at most {TAG_PREFIX_MAX} characters", field=key)
    if not _TAG_PREFIX.fullmatch(value):
        raise SettingsError(
            "may contain only letters, digits, '.', ':', '-' and '_', and must start with a letter or digit",
            field=key,
        )
    if not value.endswith(TAG_SEPARATORS) or len(value) < 2:
        raise SettingsError(
            "must be a word followed by ':', '-' or '_' (for example 'rfm:'), so that the app's tags "
            "cannot be confused with your own",
            field=key,
        )
    return value


def _check_prefixes(result: ScoringSettings, changed: set[str]) -> None:
    """No prefix may equal or begin another one: the app could not tell its tags apart. The problem
    is told at a prefix the merchant changed."""
    for key in sorted(PREFIX_FIELDS, key=lambda k: (k not in changed, PREFIX_FIELDS.index(k))):
        mine = getattr(result, key).lower()
        for other in PREFIX_FIELDS:
            theirs = getattr(result, other).lower()
            if other == key or not (mine.startswith(theirs) or theirs.startswith(mine)):
                continue
            how = "is the same as" if mine == theirs else "overlaps"
            raise SettingsError(
                f"'{getattr(result, key)}' {how} the {PREFIX_NAMES[other]} '{getattr(result, other)}': "
                "the three tag prefixes must differ and none may begin another, or the app could not "
                "tell its tags apart",
                field=key,
            )


def validate(changes: Mapping[str, Any], current: ScoringSettings = DEFAULTS) -> ScoringSettings:
    """``current`` with ``changes`` applied, every value checked; raises SettingsError in plain words
    (``field`` names the setting, the words do not repeat its name)."""
    known = {f.name for f in fields(ScoringSettings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "scoring_method":
            if value not in METHODS:
                raise SettingsError("must be 'quintile' or 'thirds'", field=key)
            clean[key] = value
        elif key == "window_days":
            clean[key] = (
                None
                if value in (None, "", "all")
                else _whole(value, key, 1, MAX_WINDOW_DAYS, empty=", or empty to count every order")
            )
        elif key == "segment_grid":
            clean[key] = _grid(value)
        elif key == "clv_horizon_days":
            clean[key] = _whole(value, key, 1, MAX_HORIZON_DAYS)
        elif key == "lifespan_years":
            clean[key] = _number(
                value,
                key,
                0.0,
                MAX_LIFESPAN_YEARS,
                f"must be a number of years above 0 and at most {MAX_LIFESPAN_YEARS:g}",
            )
        elif key == "cac":
            if value in (None, ""):
                clean[key] = None
            else:
                cac = Decimal(str(_number(value, key, 0.0, 1e9, "must be an amount above 0, or empty")))
                clean[key] = cac.quantize(Decimal("0.0001"))
        elif key == "conversion_rate":
            clean[key] = None if value in (None, "") else _rate(value)
        elif key in PREFIX_FIELDS:
            clean[key] = _prefix(value, key)
        elif key == "sync_enabled":
            if not isinstance(value, bool):
                raise SettingsError("must be true or false", field=key)
            clean[key] = value
    result = replace(current, **clean)
    _check_prefixes(result, {k for k in PREFIX_FIELDS if k in clean and clean[k] != getattr(current, k)})
    return result


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """What saving the merchant's changes did: the settings before and after."""

    before: ScoringSettings
    after: ScoringSettings

    @property
    def affects_scores(self) -> bool:
        """True when the stored scores must be recomputed (tag prefixes and sync do not count)."""
        return self.after.affects_scores(self.before)


# -- suggested plays -------------------------------------------------------------------------------

PLAY_MAX: Final = 500
"""A play is a sentence or two for the merchant's own eyes; the stored column's width."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def play_field(segment: str) -> str:
    """The form field of a segment's play: ``play_at-risk``."""
    return "play_" + slug(segment)


PLAY_FIELDS: Final[Mapping[str, str]] = MappingProxyType({play_field(n): n for n in RFM_SEGMENT_NAMES})
"""Form field → segment name, for every segment that has a play."""


def validate_play(segment: str, text: Any) -> str | None:
    """The play as stored, None for "the default" (left empty, or the default word for word);
    raises SettingsError naming the segment's field."""
    if segment not in SEGMENT_PLAYS:
        raise SettingsError(f"there is no segment named {segment!r}", field="segment")
    field_name = play_field(segment)
    if not isinstance(text, str):
        raise SettingsError(f"the play for {segment} must be text", field=field_name)
    text = text.replace("\r\n", "\n")  # a textarea's line breaks
    if _CONTROL.search(text):
        raise SettingsError(f"the play for {segment} may not contain control characters", field=field_name)
    text = " ".join(text.split())
    if len(text) > PLAY_MAX:
        raise SettingsError(f"the play for {segment} must be at most {PLAY_MAX} characters", field=field_name)
    return None if not text or text == SEGMENT_PLAYS[segment] else text
