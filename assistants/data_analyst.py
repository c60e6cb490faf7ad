"""The Data Analyst's tools: read-only SQL over the sales database.

The database is `ANALYST_DATABASE` (a SQLite file's path or `s3://bucket/key`), or the sample
built from `sample_data/` when that is unset. It is opened on the first call, not on import.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict
from functools import cache
from typing import Literal, get_args

from pydantic import BaseModel, Field

from threadline.tools import ReadOnlyQueryEngine, ToolContext, ToolResult, tool
from threadline.tools.sql import DEFAULT_ROW_CAP, DEFAULT_TIME_CAP_SECONDS

from .sales_database import resolve_database

TableName = Literal["sales", "customers", "products"]
TABLES: tuple[str, ...] = get_args(TableName)

# Enough of the SQL to recognise the query in the timeline without logging an essay.
_SUMMARY_SQL_CHARS = 500


class QueryDatabaseArgs(BaseModel):
    query: str = Field(description="One SQLite SELECT statement (CTEs and joins are fine).")


class GetTableSchemaArgs(BaseModel):
    table_name: TableName = Field(description="The table to describe.")


class ExportQueryCsvArgs(BaseModel):
    query: str = Field(description="One SQLite SELECT statement whose rows to export.")
    filename: str = Field(description="The CSV file's name, e.g. revenue_by_region.csv.")


@cache
def sales_database() -> ReadOnlyQueryEngine:
    return ReadOnlyQueryEngine(resolve_database(os.environ.get("ANALYST_DATABASE")), TABLES)


# Naming every table and column up front saves the model a schema round trip.
@tool(
    description=(
        "Run one read-only SQLite SELECT query against the sales database and return the rows."
        " Tables: sales(id, sale_date, customer_id, product_id, quantity, amount, region);"
        " customers(id, name, region, signup_date); products(id, name, category, price)."
        f" At most {DEFAULT_ROW_CAP} rows come back (truncated=true means there were more)"
        f" and a query may run for {DEFAULT_TIME_CAP_SECONDS:g} s. Only SELECT is allowed:"
        " no PRAGMA, no writes."
    )
)
def query_database(args: QueryDatabaseArgs) -> ToolResult:
    result = sales_database().query(args.query)
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


@tool(
    description=(
        "Describe one table of the sales database: its columns (name, type, notnull, pk) "
        f"and its row count. Tables: {', '.join(TABLES)}."
    )
)
def get_table_schema(args: GetTableSchemaArgs) -> ToolResult:
    schema = sales_database().table_schema(args.table_name)
    return ToolResult(
        data={
            "table": schema.table,
            "columns": [asdict(column) for column in schema.columns],
            "row_count": schema.row_count,
        },
        summary={"table": schema.table, "row_count": schema.row_count},
    )


@tool(
    description=(
        "Export the rows of one read-only SELECT query over the sales database as a CSV file "
        f"the user can download (at most {DEFAULT_ROW_CAP} rows). A person approves each "
        "export before it runs; a denied export says why."
    ),
    requires_approval=True,
)
def export_query_csv(args: ExportQueryCsvArgs, context: ToolContext) -> ToolResult:
    result = sales_database().query(args.query)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(result.columns)
    writer.writerows(result.rows)
    filename = args.filename if args.filename.endswith(".csv") else f"{args.filename}.csv"
    saved = context.save_file(filename, text.getvalue().encode(), "text/csv")
    return ToolResult(
        data={
            "filename": saved.filename,
            "rows": result.row_count,
            "truncated": result.truncated,
            "where": "the user downloads it from this run's files",
        },
        summary={
            "sql": args.query[:_SUMMARY_SQL_CHARS],
            "row_count": result.row_count,
            "file": saved.filename,
        },
    )
