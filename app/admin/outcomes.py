"""Outcomes ("came back"): of the customers who entered a lifecycle stage or an RFM segment in a
week or a month, how many placed a qualifying order within 30, 60 and 90 days of entering, and
what those orders were worth, period against period (docs/metrics.md, "Outcomes").

Read from the recorded history (``stage_changes``, ``segment_changes``) and the order ledger:
- an entry is a change into the stage or segment recorded by a scoring, dated when it was
  recorded; periods are the shop's calendar weeks (Monday first) or months, in its time zone;
- only the customers' behaviour counts: entries by a model refit or a settings change are the
  same history read differently, counted apart ("reclassified") and never as entrants;
- a customer who entered the same stage or segment more than once in one period counts once,
  from their first entry of the period;
- "came back within N days": at least one qualifying order after the entry and at most N × 24 h
  after it; "spent": the value of those orders (the ledger's value, in the shop's currency);
- a period's N-day figure exists only once every entrant of the period has had N days
  (period end + N days is past): until then it is "not complete yet", never "did not come back".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.admin import repository as repo
from app.vocabulary import RFM_SEGMENT_NAMES, SEGMENTS_OF_METHOD, STAGE_LABELS, STAGE_NAMES

WINDOW_DAYS: Final[tuple[int, ...]] = (30, 60, 90)
KINDS: Final[tuple[str, str]] = ("stage", "segment")
PERIODS: Final[dict[str, int]] = {"month": 6, "week": 12}
"""Each period kind and how many of them the page shows (the current one included)."""


@dataclass(frozen=True, slots=True)
class Window:
    days: int
    complete: bool
    """Every entrant of the period has had ``days`` days; else the figures below are None."""
    came_back: int | None
    spent: Decimal | None

    def share(self, entered: int) -> float | None:
        if not self.complete or self.came_back is None or entered == 0:
            return None
        return self.came_back / entered


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date
    """The first day after the period (exclusive), in the shop's calendar."""
    label: str
    entered: int
    windows: tuple[Window, ...]
    under_way: bool
    """The period itself is not over: more customers may still enter it."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """The latest period complete at ``days`` against the earlier complete periods shown."""

    days: int
    latest: Period
    latest_share: float
    earlier: list[Period]
    earlier_share: float | None


@dataclass(slots=True)
class GroupOutcome:
    name: str
    label: str
    periods: list[Period]
    reclassified: int
    """Entries in the periods shown caused by a refit or a settings change (not counted)."""
    comparison: Comparison | None = None

    @property
    def entered(self) -> int:
        return sum(p.entered for p in self.periods)


@dataclass(slots=True)
class Outcomes:
    kind: str
    period: str
    since: datetime
    now: datetime
    timezone: str
    groups: list[GroupOutcome] = field(default_factory=list)


def period_start(day: date, period: str) -> date:
    return day.replace(day=1) if period == "month" else day - timedelta(days=day.weekday())


def next_period(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_label(start: date, period: str) -> str:
    return start.strftime("%b %Y") if period == "month" else "Week of " + start.strftime("%b %-d")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def period_starts(now: datetime, zone: ZoneInfo, period: str) -> list[date]:
    """The ``PERIODS[period]`` periods up to and including the one under way, oldest first."""
    start = period_start(now.astimezone(zone).date(), period)
    starts = [start]
    for _ in range(PERIODS[period] - 1):
        start = period_start(start - timedelta(days=1), period)
        starts.append(start)
    return starts[::-1]


def summarise(
    totals: list[repo.OutcomeTotals],
    reclassified: dict[str, int],
    groups: list[tuple[str, str]],
    starts: list[date],
    period: str,
    now: datetime,
    zone: ZoneInfo,
    days: tuple[int, ...] = WINDOW_DAYS,
) -> list[GroupOutcome]:
    """The outcome figures per (group, label) of ``groups`` and period of ``starts`` from the
    database's ``totals`` (period indexes into ``starts``); a group with entries but not in
    ``groups`` is added at the end. A window's figures are kept only where complete."""
    found = {(t.group, t.period): t for t in totals}
    names = {name for name, _ in groups}
    extra = sorted({t.group for t in totals} | set(reclassified) - names)
    result = []
    for name, label in [*groups, *((g, g) for g in extra if g not in names)]:
        periods = []
        for i, start in enumerate(starts):
            end = next_period(start, period)
            t = found.get((name, i))
            windows = []
            for k, n in enumerate(days):
                complete = _midnight(end, zone) + timedelta(days=n) <= now
                windows.append(
                    Window(
                        n,
                        complete,
                        (t.came_back[k] if t else 0) if complete else None,
                        (Decimal(t.spent[k] or 0) if t else Decimal(0)) if complete else None,
                    )
                )
            periods.append(
                Period(
                    start,
                    end,
                    period_label(start, period),
                    t.entered if t else 0,
                    tuple(windows),
                    _midnight(end, zone) > now,
                )
            )
        group = GroupOutcome(name, label, periods, reclassified.get(name, 0))
        group.comparison = _comparison(periods, 0, days[0])
        result.append(group)
    return result


def _comparison(periods: list[Period], k: int, days: int) -> Comparison | None:
    complete = [p for p in periods if p.windows[k].complete and p.entered]
    if not complete:
        return None
    latest, earlier = complete[-1], complete[:-1]
    back = sum(p.windows[k].came_back or 0 for p in earlier)
    entered = sum(p.entered for p in earlier)
    return Comparison(
        days,
        latest,
        (latest.windows[k].came_back or 0) / latest.entered,
        earlier,
        back / entered if entered else None,
    )


def shown_groups(kind: str, scoring_method: str) -> list[tuple[str, str]]:
    """(name, label) of the stages, or of the segments of the scoring method in use."""
    if kind == "stage":
        return [(s, STAGE_LABELS[s]) for s in STAGE_NAMES]
    return [(s, s) for s in SEGMENTS_OF_METHOD[scoring_method] if s in RFM_SEGMENT_NAMES]


def outcomes(
    session: Session, shop_id: int, kind: str, period: str, now: datetime, timezone: str, scoring_method: str
) -> Outcomes:
    zone = ZoneInfo(timezone)
    starts = period_starts(now, zone, period)
    since = _midnight(starts[0], zone)
    boundaries = [
        *(_midnight(start, zone) for start in starts),
        _midnight(next_period(starts[-1], period), zone),
    ]
    totals = repo.outcome_totals(session, shop_id, kind, boundaries, now, WINDOW_DAYS)
    reclassified = repo.reclassified_entries(session, shop_id, kind, since, now)
    result = Outcomes(kind, period, since, now, timezone)
    result.groups = summarise(
        totals, reclassified, shown_groups(kind, scoring_method), starts, period, now, zone
    )
    return result
