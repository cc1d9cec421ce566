"""Shared declarative base, naming convention and the column types every table uses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, Column, DateTime, Dialect, MetaData, Numeric, PrimaryKeyConstraint, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import TypeDecorator, TypeEngine

from app.kit.money import AMOUNT_PRECISION, MONEY_PLACES, MONEY_QUANTUM, SUM_PRECISION

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def generated_id_of(table: Table) -> Column[Any] | None:
    """The generated ``id`` of a ``(shop_id, id)`` key: every table is keyed by shop first, so that
    it can be distributed by ``shop_id`` (docs/deployment.md, "Citus"), and a history table numbers
    its rows with a sequence. None for a table keyed otherwise."""
    columns = list(table.primary_key.columns)
    column = table.autoincrement_column
    return column if len(columns) > 1 and column is not None else None


# SQLite generates a key only for a single ``INTEGER PRIMARY KEY`` (the rowid), never for a column of
# a composite key. There the ``id`` of a ``(shop_id, id)`` key is the rowid: unique on its own, so
# ``(shop_id, id)`` is unique too, and SQLite numbers new rows as PostgreSQL's sequence does.
@compiles(CreateColumn, "sqlite")
def _sqlite_column(create: CreateColumn, compiler: Any, **kw: Any) -> str:
    column = create.element
    if isinstance(column.table, Table) and column is generated_id_of(column.table):
        return f"{compiler.preparer.format_column(column)} INTEGER NOT NULL"
    return cast(str, compiler.visit_create_column(create, **kw))


@compiles(PrimaryKeyConstraint, "sqlite")
def _sqlite_primary_key(constraint: PrimaryKeyConstraint, compiler: Any, **kw: Any) -> str:
    column = generated_id_of(cast(Table, constraint.table))
    if column is None:
        return cast(str, compiler.visit_primary_key_constraint(constraint, **kw))
    name = compiler.preparer.format_constraint(constraint)
    return f"CONSTRAINT {name} PRIMARY KEY ({compiler.preparer.format_column(column)})"


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as such (for INSERT … ON CONFLICT and bulk SQL)."""
    return cast(Table, model.__table__)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # Naive UTC text sorts and compares correctly in SQLite.
            return dialect.type_descriptor(DateTime(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


MONEY_SCALE = 10**MONEY_PLACES
_INT64_LIMIT = 2**63
_WIDE = Context(prec=2 * SUM_PRECISION)


class Money(TypeDecorator[Decimal]):
    """Exact money. numeric(precision, 4) on PostgreSQL: ``AMOUNT_PRECISION`` for one amount,
    ``SUM_PRECISION`` for sums (app/kit/money.py says why each holds its values). On SQLite, whose
    NUMERIC is a float, an integer count of 1/10,000 units so that sums stay exact there too; a
    count past int64 is stored as a REAL instead of failing."""

    impl = Numeric(AMOUNT_PRECISION, MONEY_PLACES)
    cache_ok = True

    def __init__(self, precision: int = AMOUNT_PRECISION, scale: int = MONEY_PLACES) -> None:
        super().__init__()
        if scale != MONEY_PLACES:
            raise ValueError(f"money keeps {MONEY_PLACES} decimal places")
        self.precision = precision
        self.scale = scale
        self.impl = Numeric(precision, scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            units = int(_WIDE.multiply(value, MONEY_SCALE).to_integral_value(context=_WIDE))
            return units if -_INT64_LIMIT <= units < _INT64_LIMIT else float(units)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            units = Decimal(int(value))
            return _WIDE.divide(units, MONEY_SCALE).quantize(MONEY_QUANTUM, context=_WIDE)
        return Decimal(value).quantize(MONEY_QUANTUM, context=_WIDE)


SumOfMoney = Money(SUM_PRECISION)
"""A sum of amounts (app/kit/money.py)."""
