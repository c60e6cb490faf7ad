"""The Data Analyst assistant's tools: read-only SQL over the sales database."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field

from threadline.tools.registry import ToolRegistry, ToolResult
from threadline.tools.sql import DEFAULT_ROW_CAP, DEFAULT_TIME_CAP_SECONDS, ReadOnlyQueryEngine

TableName = Literal["sales", "customers", "products"]
DATA_ANALYST_TABLES: tuple[str, ...] = get_args(TableName)

# Enough of the SQL to recognise the query in the timeline without logging an essay.
_SUMMARY_SQL_CHARS = 500


class QueryDatabaseArgs(BaseModel):
    query: str = Field(description="One SQLite SELECT statement (CTEs and joins are fine).")


class GetTableSchemaArgs(BaseModel):
    table_name: TableName = Field(description="The table to describe.")


def build_data_analyst_tools(
    database_path: str | Path,
    *,
    row_cap: int = DEFAULT_ROW_CAP,
    time_cap_seconds: float = DEFAULT_TIME_CAP_SECONDS,
) -> ToolRegistry:
    """`query_database` and `get_table_schema` over the database at `database_path`."""
    engine = ReadOnlyQueryEngine(
        database_path, DATA_ANALYST_TABLES, row_cap=row_cap, time_cap_seconds=time_cap_seconds
    )
    # Naming every table and column up front saves the model a schema round trip.
    table_overview = "; ".join(
        f"{schema.table}({', '.join(column.name for column in schema.columns)})"
        for schema in map(engine.table_schema, DATA_ANALYST_TABLES)
    )
    registry = ToolRegistry()

    @registry.tool(
        description=(
            "Run one read-only SQLite SELECT query against the sales database and return "
            f"the rows. Tables: {table_overview}. At most {row_cap} rows come back "
            f"(truncated=true means there were more) and a query may run for "
            f"{time_cap_seconds:g} s. Only SELECT is allowed: no PRAGMA, no writes."
        )
    )
    def query_database(args: QueryDatabaseArgs) -> ToolResult:
        result = engine.query(args.query)
        return ToolResult(
            data={
                "columns": result.columns,
                "rows": result.rows,
                "row_count": result.row_count,
                "truncated": result.truncated,
            },
            summary={
                "sql": args.query[:_SUMMARY_SQL_CHARS],
                "row_count": result.row_count,
                "truncated": result.truncated,
            },
        )

    @registry.tool(
        description=(
            "Describe one table of the sales database: its columns (name, type, notnull, pk) "
            f"and its row count. Tables: {', '.join(DATA_ANALYST_TABLES)}."
        )
    )
    def get_table_schema(args: GetTableSchemaArgs) -> ToolResult:
        schema = engine.table_schema(args.table_name)
        return ToolResult(
            data={
                "table": schema.table,
                "columns": [asdict(column) for column in schema.columns],
                "row_count": schema.row_count,
            },
            summary={"table": schema.table, "row_count": schema.row_count},
        )

    return registry
