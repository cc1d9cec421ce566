from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "cdnow"


@dataclass(frozen=True)
class CdnowSummary:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray


@dataclass(frozen=True)
class CdnowTransactions:
    customer: np.ndarray
    day: np.ndarray  # days since 1997-01-01
    value: np.ndarray
    calibration_end: float  # 1997-09-30
    holdout_end: float  # 1998-06-30


def _day(date: dt.date) -> float:
    return float(date.toordinal() - dt.date(1997, 1, 1).toordinal())


@pytest.fixture(scope="session")
def cdnow_summary() -> CdnowSummary:
    """FHL 2005 calibration summary (weeks); m is 0 here (the file has no spend)."""
    data = np.loadtxt(DATA / "cdnow_customers_summary.csv", delimiter=",", skiprows=1)
    return CdnowSummary(data[:, 1], data[:, 2], data[:, 3], np.zeros(len(data)))


@pytest.fixture(scope="session")
def cdnow_summary_with_spend() -> CdnowSummary:
    data = np.loadtxt(DATA / "cdnow_customers_summary_with_transactions.csv", delimiter=",", skiprows=1)
    return CdnowSummary(data[:, 1], data[:, 2], data[:, 3], data[:, 4])


@pytest.fixture(scope="session")
def cdnow_transactions() -> CdnowTransactions:
    raw = np.loadtxt(DATA / "CDNOW_sample.txt")
    dates = raw[:, 2].astype(int)
    days = np.array([_day(dt.date(d // 10000, d // 100 % 100, d % 100)) for d in dates])
    return CdnowTransactions(
        customer=raw[:, 1].astype(np.int64),
        day=days,
        value=raw[:, 4],
        calibration_end=_day(dt.date(1997, 9, 30)),
        holdout_end=_day(dt.date(1998, 6, 30)),
    )
