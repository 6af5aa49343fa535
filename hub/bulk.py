"""Many rows in one statement, on both databases, by passing them as one JSON parameter.

A job that changes a hundred thousand permits must not pay a statement, or even a bound
parameter, per row: an executemany costs a round of driver work per row, and a multi-row
VALUES list with thousands of placeholders costs the driver as much again in parsing. Both
databases can instead read a JSON array as a table (`json_to_recordset` on PostgreSQL,
`json_each` on SQLite), so the rows travel as a single text parameter encoded by the C JSON
encoder, and the statement text is the same for every batch (prepared once, cached).

Only columns of the hub's own tables are named here, never caller input, so building the
statement text is safe. Constant values (the batch's time, its actor) are ordinary bound
parameters, which keeps their types exact (SQLite's stored datetime format, time zones).

A string with U+0000 cannot travel this way: PostgreSQL refuses it (json_to_recordset will not
turn it into text, even inside a JSON value) and SQLite's json_extract silently cuts the string
there, so the row stored would not be the row given. Such rows are refused with ValueError on
both databases, before anything is sent.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Session
from typing_extensions import Unpack

_ENCODED_NUL = "\\u0000"  # how the encoder writes U+0000
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # that escape, not a typed backslash-u0000


def _encode(value: Any) -> Any:
    if isinstance(value, date):  # datetime is a date too, but rows carry constants for those
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in bulk rows")


def _source(
    table: sa.Table, columns: Sequence[str], dialect: Dialect, parameter: str = "rows"
) -> str:
    """A FROM item named `v` with one row per element of the JSON array `:<parameter>`."""
    if dialect.name == "postgresql":
        typed = ", ".join(
            f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in columns
        )
        return f"json_to_recordset(CAST(:{parameter} AS json)) AS v({typed})"
    if dialect.name == "sqlite":
        picked = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in columns)
        return f"(SELECT {picked} FROM json_each(:{parameter})) AS v"
    raise NotImplementedError(f"bulk rows on {dialect.name}")


def json_object(dialect: Dialect, table: str, columns: Sequence[str]) -> str:
    """SQL building a JSON object of `table`'s `columns` (dates as ISO strings on both)."""
    function = "json_build_object" if dialect.name == "postgresql" else "json_object"
    pairs = ", ".join(f"'{name}', {table}.{name}" for name in columns)
    return f"{function}({pairs})"


def _rows(rows: Sequence[Mapping[str, Any]]) -> str:
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_encode)
    if _ENCODED_NUL in text and _NUL_ESCAPE.search(text):  # one plain scan on the common path
        raise ValueError("bulk rows cannot carry U+0000 (neither database stores it as given)")
    return text


class InsertOptions(TypedDict, total=False):
    """Insert.of's keyword arguments."""

    constants: Mapping[str, Any] | None
    returning: Sequence[str]
    computed: Mapping[str, str] | None
    join: str
    parameter: str


def insert_rows(
    session: Session,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    **options: Unpack[InsertOptions],
) -> Sequence[sa.Row[Any]]:
    """INSERT `rows` (dicts with the same keys) plus `constants` into `table`; returns the
    `returning` columns of the new rows, in no particular order. `computed` columns are SQL
    expressions over the rows (`v`) and the `join`ed tables, evaluated by the database."""
    if not rows:
        return []
    statement = Insert.of(session.get_bind().dialect, table, rows, **options)
    result = session.execute(statement.bound(), statement.parameters)
    return result.all() if options.get("returning") else []


@dataclass(frozen=True)
class Insert:
    """The text and parameters of a bulk INSERT, for a caller that sends it inside a larger
    statement (a data-modifying WITH on PostgreSQL) to save a round trip."""

    table: sa.Table
    text: str
    parameters: dict[str, Any]
    constants: tuple[str, ...]

    @classmethod
    def of(
        cls,
        dialect: Dialect,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        constants: Mapping[str, Any] | None = None,
        returning: Sequence[str] = (),
        computed: Mapping[str, str] | None = None,
        join: str = "",
        parameter: str = "rows",
    ) -> Insert:
        """`parameter`: the name the rows are bound by (constants are bound by their column
        names), distinct for each INSERT sent in one statement."""
        constants = dict(constants or {})
        shape = _Shape(
            table,
            tuple(rows[0]),
            tuple(constants),
            tuple((computed or {}).items()),
            join,
            parameter,
            tuple(returning),
        )
        text = _insert_text(dialect, shape)
        return cls(table, text, {parameter: _rows(rows), **constants}, shape.constants)

    def bound(self, text: str | None = None, *others: Insert) -> Any:
        """This INSERT, or `text` that contains it and `others`, with every constant typed."""
        typed = tuple((insert.table, insert.constants) for insert in (self, *others))
        return _bound_text(text or self.text, typed)


@dataclass(frozen=True)
class _Shape:
    """What an INSERT's text depends on: the same for every request of one kind."""

    table: sa.Table
    columns: tuple[str, ...]
    constants: tuple[str, ...]
    computed: tuple[tuple[str, str], ...]
    join: str
    parameter: str
    returning: tuple[str, ...]


# Texts and statements kept by their shape: an audited request sends the same few, and
# building them (the column types compiled for json_to_recordset, a new TextClause whose cache
# key SQLAlchemy then computes) cost as much as sending them.
_KEPT = 256


@functools.lru_cache(maxsize=_KEPT)
def _insert_text(dialect: Dialect, shape: _Shape) -> str:
    names = ", ".join([*shape.columns, *shape.constants, *(name for name, _ in shape.computed)])
    values = ", ".join(
        [
            *(f"v.{name}" for name in shape.columns),
            *(f":{name}" for name in shape.constants),
            *(expression for _, expression in shape.computed),
        ]
    )
    text = (
        f"INSERT INTO {shape.table.name} ({names}) SELECT {values}"
        f" FROM {_source(shape.table, shape.columns, dialect, shape.parameter)} {shape.join}"
    )
    if shape.returning:
        text += " RETURNING " + ", ".join(shape.returning)
    return text


@functools.lru_cache(maxsize=_KEPT)
def _bound_text(text: str, typed: tuple[tuple[sa.Table, tuple[str, ...]], ...]) -> Any:
    statement = sa.text(text)
    for table, constants in typed:
        statement = _bound(statement, table, constants)
    return statement


def update_rows(
    session: Session,
    table: sa.Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    constants: Mapping[str, Any] | None = None,
    increment: Sequence[str] = (),
) -> int:
    """UPDATE `table` from `rows`, matched on `key`: each row's other keys are the new values,
    `constants` are set on all, and each column in `increment` goes up by one. Returns the
    number of rows changed."""
    if not rows:
        return 0
    constants = dict(constants or {})
    dialect = session.get_bind().dialect
    columns = list(rows[0])
    assignments = [
        *(f"{name} = v.{name}" for name in columns if name != key),
        *(f"{name} = :{name}" for name in constants),
        *(f"{name} = {table.name}.{name} + 1" for name in increment),
    ]
    statement = (
        f"UPDATE {table.name} SET {', '.join(assignments)}"
        f" FROM {_source(table, columns, dialect)} WHERE {table.name}.{key} = v.{key}"
    )
    result = session.execute(
        _bound(sa.text(statement), table, constants), {"rows": _rows(rows), **constants}
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _bound(statement: sa.TextClause, table: sa.Table, constants: Iterable[str]) -> Any:
    """Give each constant its column's type, so SQLAlchemy converts it as the ORM would."""
    return statement.bindparams(
        *(sa.bindparam(name, type_=table.c[name].type) for name in constants)
    )
