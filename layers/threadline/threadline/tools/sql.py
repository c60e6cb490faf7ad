"""A read-only SQLite query engine for SQL written by a model.

Safety does not come from inspecting the SQL text. The database is opened read-only, and
SQLite's authorizer - which sees every table, column and function the *compiled* statement
touches - allows only reads of allow-listed tables and calls of allow-listed functions.
The text is inspected for structure only: exactly one statement may be run.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROW_CAP = 200
DEFAULT_TIME_CAP_SECONDS = 2.0
MAX_SQL_LENGTH = 10_000
# Largest string, blob or row a query may build; stops zeroblob/printf memory bombs.
MAX_VALUE_BYTES = 1_000_000
# How many VM instructions SQLite runs between two checks of the time cap.
_PROGRESS_CHECK_INTERVAL = 1_000

SAFE_FUNCTIONS = frozenset(
    {
        # aggregates
        "avg", "count", "group_concat", "max", "min", "string_agg", "sum", "total",
        # window functions
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
        "lag", "lead", "first_value", "last_value", "nth_value",
        # conditionals and types
        "coalesce", "ifnull", "iif", "nullif", "typeof", "likely", "unlikely", "likelihood",
        # strings
        "char", "concat", "concat_ws", "format", "glob", "hex", "instr", "length", "like",
        "lower", "ltrim", "printf", "quote", "replace", "rtrim", "substr", "substring",
        "trim", "unicode", "upper",
        # numbers and maths
        "abs", "random", "round", "sign", "acos", "asin", "atan", "atan2", "ceil", "ceiling",
        "cos", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
        "power", "radians", "sin", "sqrt", "tan", "trunc",
        # dates and times
        "date", "datetime", "julianday", "strftime", "time", "timediff", "unixepoch",
    }
)  # fmt: skip


class QueryError(Exception):
    """A query could not be answered; the message is written for the model that sent it."""


class QueryRejected(QueryError):
    """The query asks for something the engine does not allow."""


class QueryFailed(QueryError):
    """SQLite could not run the query (syntax error, unknown column, ...)."""


class QueryTimedOut(QueryError):
    """The query ran longer than the time cap and was interrupted."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool  # more rows existed than the row cap allowed

    @property
    def row_count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    notnull: bool
    pk: bool


@dataclass(frozen=True)
class TableSchema:
    table: str
    columns: list[ColumnInfo]
    row_count: int


# All that may follow the one statement: whitespace, semicolons and comments. Possessive
# quantifiers keep the match linear on hostile input.
_TRAILING_NOISE = re.compile(r"(?:\s|;|--[^\n]*+|/\*(?:.*?\*/|.*+))*+", re.DOTALL)


class ReadOnlyQueryEngine:
    """Runs single SELECT statements against allow-listed tables of one SQLite file."""

    def __init__(
        self,
        database_path: str | Path,
        allowed_tables: Iterable[str],
        *,
        row_cap: int = DEFAULT_ROW_CAP,
        time_cap_seconds: float = DEFAULT_TIME_CAP_SECONDS,
    ) -> None:
        if row_cap < 1:
            raise ValueError("row_cap must be at least 1")
        if time_cap_seconds <= 0:
            raise ValueError("time_cap_seconds must be positive")
        self._database_path = Path(database_path).resolve(strict=True)
        self.row_cap = row_cap
        self.time_cap_seconds = time_cap_seconds
        self._tables = self._resolve_table_names(allowed_tables)

    @property
    def allowed_tables(self) -> tuple[str, ...]:
        return tuple(sorted(self._tables.values()))

    def query(self, sql: str) -> QueryResult:
        """Run one SELECT statement; raise a QueryError subclass if it is refused or fails."""
        statement = _single_statement(sql)
        denials: list[str] = []
        deadline = time.monotonic() + self.time_cap_seconds

        def past_deadline() -> bool:
            return time.monotonic() > deadline

        with closing(self._connect()) as connection:
            connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
            connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH)
            # Belt and braces: VACUUM INTO writes a new file even from a read-only database.
            connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            connection.set_authorizer(self._authorizer(denials))
            connection.set_progress_handler(past_deadline, _PROGRESS_CHECK_INTERVAL)
            try:
                cursor = connection.execute(statement)
                rows = cursor.fetchmany(self.row_cap + 1)
            except sqlite3.Error as error:
                if denials:
                    raise QueryRejected(denials[0]) from error
                if past_deadline():
                    raise QueryTimedOut(
                        f"the query ran longer than {self.time_cap_seconds:g} s and was stopped"
                    ) from error
                raise QueryFailed(f"SQLite error: {error}") from error
        if cursor.description is None:
            raise QueryRejected("the query contains no SELECT statement")
        return QueryResult(
            columns=[column[0] for column in cursor.description],
            rows=[[_json_safe(value) for value in row] for row in rows[: self.row_cap]],
            truncated=len(rows) > self.row_cap,
        )

    def table_schema(self, table: str) -> TableSchema:
        """Columns and row count of an allowed table, read by trusted SQL (no authorizer)."""
        name = self._tables.get(table.lower())
        if name is None:
            raise QueryRejected(self._unknown_table_message(table))
        with closing(self._connect()) as connection:
            columns = [
                ColumnInfo(name=column, type=declared_type, notnull=bool(notnull), pk=bool(pk))
                for column, declared_type, notnull, pk in connection.execute(
                    'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid',
                    (name,),
                )
            ]
            # An allowed table's name, quoted; parameters cannot name a table.
            count_rows = f"SELECT count(*) FROM {_quote(name)}"  # nosec B608
            (row_count,) = connection.execute(count_rows).fetchone()
        return TableSchema(table=name, columns=columns, row_count=row_count)

    def _connect(self) -> sqlite3.Connection:
        # mode=ro: SQLite itself refuses writes, whatever gets past the authorizer.
        return sqlite3.connect(
            f"{self._database_path.as_uri()}?mode=ro", uri=True, isolation_level=None
        )

    def _resolve_table_names(self, allowed_tables: Iterable[str]) -> dict[str, str]:
        """Map each allowed table, lower-cased as SQLite compares names, to its stored name."""
        with closing(self._connect()) as connection:
            stored = {
                name.lower(): name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                )
            }
        wanted = {table.lower() for table in allowed_tables}
        missing = sorted(wanted - stored.keys())
        if missing:
            raise ValueError(f"tables not found in {self._database_path}: {', '.join(missing)}")
        return {table: stored[table] for table in wanted}

    def _authorizer(self, denials: list[str]) -> Callable[..., int]:
        def authorize(
            action: int, arg1: str | None, arg2: str | None, database: str | None, _source: Any
        ) -> int:
            if self._is_allowed(action, arg1, arg2, database):
                return sqlite3.SQLITE_OK
            denials.append(self._denial_reason(action, arg1, arg2))
            return sqlite3.SQLITE_DENY

        return authorize

    def _is_allowed(
        self, action: int, arg1: str | None, arg2: str | None, database: str | None
    ) -> bool:
        if action == sqlite3.SQLITE_READ:
            # `database` is None for reads of the whole row, e.g. count(*) or rowid.
            return arg1 is not None and arg1.lower() in self._tables and database in ("main", None)
        if action == sqlite3.SQLITE_FUNCTION:
            return arg2 is not None and arg2.lower() in SAFE_FUNCTIONS
        return action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE)

    def _denial_reason(self, action: int, arg1: str | None, arg2: str | None) -> str:
        if action == sqlite3.SQLITE_READ:
            message = self._unknown_table_message(arg1 or "")
            if arg2 == "":
                # A FROM item none of whose columns are used is reported by name with an empty
                # column, so count(*) over a materialised or recursive CTE looks like a table.
                message += "; if it is a CTE, select one of its columns by name"
            return message
        if action == sqlite3.SQLITE_FUNCTION:
            return f"the function {arg2}() is not allowed"
        if action == sqlite3.SQLITE_PRAGMA:
            return "PRAGMA statements are not allowed"
        return "only read-only SELECT statements are allowed"

    def _unknown_table_message(self, table: str) -> str:
        return (
            f"the table {table!r} is not available; "
            f"the available tables are {', '.join(self.allowed_tables)}"
        )


def _single_statement(sql: str) -> str:
    """Return the statement to run, rejecting input that holds more than one statement."""
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRejected(f"the query is longer than {MAX_SQL_LENGTH} characters")
    if "\x00" in sql:
        raise QueryRejected("the query contains a NUL character")
    end = _end_of_first_statement(sql)
    if end is None:
        return sql  # no terminating semicolon outside strings and comments: one statement
    if not _TRAILING_NOISE.fullmatch(sql, end):
        raise QueryRejected("only one SQL statement may be run at a time")
    return sql[:end]


def _end_of_first_statement(sql: str) -> int | None:
    """Index just past the semicolon that ends the first statement, as SQLite tokenizes it."""
    for index, character in enumerate(sql):
        if character == ";" and sqlite3.complete_statement(sql[: index + 1]):
            return index + 1
    return None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _json_safe(value: Any) -> Any:
    # Blobs are the one SQLite type JSON cannot carry; hex keeps them readable.
    return value.hex() if isinstance(value, bytes) else value
