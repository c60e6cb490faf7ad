"""Tools the assistants can call, how they are run, and the Data Analyst's SQL tools."""

from threadline.tools.data_analyst import DATA_ANALYST_TABLES, build_data_analyst_tools
from threadline.tools.database import resolve_database
from threadline.tools.executor import run_tool_calls
from threadline.tools.registry import Tool, ToolApi, ToolRegistry, ToolResult
from threadline.tools.sql import (
    ColumnInfo,
    QueryError,
    QueryFailed,
    QueryRejected,
    QueryResult,
    QueryTimedOut,
    ReadOnlyQueryEngine,
    TableSchema,
)

__all__ = [
    "DATA_ANALYST_TABLES",
    "ColumnInfo",
    "QueryError",
    "QueryFailed",
    "QueryRejected",
    "QueryResult",
    "QueryTimedOut",
    "ReadOnlyQueryEngine",
    "TableSchema",
    "Tool",
    "ToolApi",
    "ToolRegistry",
    "ToolResult",
    "build_data_analyst_tools",
    "resolve_database",
    "run_tool_calls",
]
