"""The arrays of the last rescore a worker committed (PostgreSQL), so that the next incremental
rescore of the same shop reads only its marked customers. Webhooks arrive in bursts per shop, and
reading every buyer of a big shop costs more than scoring the few marked ones.

The worker owns one ``RescoreCache`` and passes it to each rescore it runs; a rescore without one
(the CLI, most tests) reads every buyer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.kit import pgcopy
from app.scoring import load
from app.scoring.columns import CUSTOMER_COLUMNS, STORED_DEFAULTS

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class _Remembered:
    """Every buyer of one shop as ``load.load_customers`` would read them right after the rescore
    that stored them (token ``token``): the aggregates it read, the values it stored."""

    shop_id: int
    tz: str
    token: int
    columns: dict[str, Array]


def _exact_sum(values: Array) -> int:
    """Sum of int64 values without overflow (ids and µs timestamps of a million customers)."""
    v = np.asarray(values, dtype=np.int64)
    return int((v >> 32).sum(dtype=np.int64)) * 2**32 + int((v & 0xFFFFFFFF).sum(dtype=np.int64))


class RescoreCache:
    """One shop's buyers as the last rescore left them. Dropped before a full rescore reads
    everything (its memory is better spent on the orders)."""

    def __init__(self) -> None:
        self._kept: _Remembered | None = None

    @property
    def shop_id(self) -> int | None:
        return None if self._kept is None else self._kept.shop_id

    def forget(self) -> None:
        self._kept = None

    def customers(self, session: Session, shop_id: int, tz: str, last: Any) -> load.LoadedCustomers | None:
        """The shop's buyers from the remembered arrays and a read of the marked ones, when nothing
        but marked customers changed since: no other rescore (the token), and the unmarked buyers
        are the remembered ones with the same ``aggregates_updated_at`` (a count and two sums in
        one scan: a merge, a redaction, a change that did not mark its customer shows). Else None:
        read them all."""
        kept = self._kept
        if (
            kept is None
            or kept.shop_id != shop_id
            or kept.tz != tz
            or last is None
            or last.rescore_token is None
            or last.rescore_token != kept.token
        ):
            return None
        fresh = load.load_pending_buyers(session, shop_id, tz)
        order = np.argsort(fresh["customer_id"], kind="stable")
        fresh = {name: values[order] for name, values in fresh.items()}
        cached = kept.columns
        ids = cached["customer_id"]
        fresh_ids = fresh["customer_id"]
        if ids.size:
            position = np.minimum(np.searchsorted(ids, fresh_ids), ids.size - 1)
            was_scored = ids[position] == fresh_ids
        else:
            position = np.zeros(fresh_ids.size, dtype=np.intp)
            was_scored = np.zeros(fresh_ids.size, dtype=np.bool_)
        unmarked = np.ones(ids.size, dtype=np.bool_)
        unmarked[position[was_scored]] = False
        expected = (
            int(np.count_nonzero(unmarked)),
            _exact_sum(ids[unmarked]),
            _exact_sum(cached["aggregates_updated_at"][unmarked]),
        )
        if load.unmarked_buyers_checksum(session, shop_id) != expected:
            return None
        columns: dict[str, Array] = {}
        for name, _ in CUSTOMER_COLUMNS:
            if name in fresh:
                added = fresh[name].astype(cached[name].dtype, copy=False)
            elif name == "scored":
                added = was_scored
            else:
                added = np.full(fresh_ids.size, STORED_DEFAULTS.get(name, 0), dtype=cached[name].dtype)
                added[was_scored] = cached[name][position[was_scored]]
            columns[name] = np.concatenate([cached[name][unmarked], added])
        order = np.argsort(columns["customer_id"], kind="stable")
        return load.LoadedCustomers({name: values[order] for name, values in columns.items()}, [])

    def remember(
        self, shop_id: int, tz: str, token: int, cust: dict[str, Array], stored: dict[str, Array]
    ) -> None:
        """Keep what a read right after this rescore's commit would return: the buyers read
        (``cust``) with the values stored for them (``stored``, by column name). Not when a money
        value took the float path (``pgcopy.money_units``): only the units path stores exactly the
        rounded float."""
        for name, places in (("monetary", 4), ("spent_last_year", 4), ("predicted_clv", 2)):
            if np.any(pgcopy.money_units(stored[name], places) == pgcopy.NOT_EXACT):
                self._kept = None
                return
        columns: dict[str, Array] = {}
        for name, _ in CUSTOMER_COLUMNS:
            dtype = cust[name].dtype
            if name == "pending":
                columns[name] = np.zeros(cust[name].size, dtype=dtype)
            elif name == "scored":
                columns[name] = np.ones(cust[name].size, dtype=dtype)
            else:
                columns[name] = np.asarray(stored.get(name, cust[name])).astype(dtype, copy=False)
        self._kept = _Remembered(shop_id, tz, token, columns)

    def remember_as_read(self, shop_id: int, tz: str, token: int, cust: dict[str, Array]) -> None:
        """A rescore that stored nothing: what it read is what is stored."""
        self._kept = _Remembered(shop_id, tz, token, cust)
