"""Tools the assistants can call, how they are run, and a read-only SQL engine for them."""

from threadline.tools.executor import run_tool_calls
from threadline.tools.lambda_tools import LambdaTool, LambdaToolConfig
from threadline.tools.registry import (
    FunctionTool,
    InvalidArguments,
    Tool,
    ToolApi,
    ToolContext,
    ToolRegistry,
    ToolResult,
    tool,
)
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
    "ColumnInfo",
    "FunctionTool",
    "InvalidArguments",
    "LambdaTool",
    "LambdaToolConfig",
    "QueryError",
    "QueryFailed",
    "QueryRejected",
    "QueryResult",
    "QueryTimedOut",
    "ReadOnlyQueryEngine",
    "TableSchema",
    "Tool",
    "ToolApi",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "run_tool_calls",
    "tool",
]
