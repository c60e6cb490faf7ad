"""A small remote MCP server for the local stack (Streamable HTTP, the `mcp` package), so that
an assistant's MCP tools can be tried offline: the local OpenAI server lists and calls its
tools as OpenAI calls a remote MCP server's. With a token it refuses requests that do not
carry `Authorization: Bearer <token>`, as a real server would without the headers an
assistant's `headers_secret` holds.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from local.served_app import ServedApp

# Fixed rates, so answers are deterministic.
RATES_TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}


def finance_server() -> MCPServer:
    server = MCPServer(
        "finance", instructions="Exchange rates and company holidays.", log_level="WARNING"
    )

    @server.tool(description="The exchange rate from one currency to another (USD, EUR, GBP, JPY).")
    def exchange_rate(base: str, quote: str) -> dict[str, Any]:
        if base not in RATES_TO_USD or quote not in RATES_TO_USD:
            raise ValueError(f"unknown currency: choose from {', '.join(RATES_TO_USD)}")
        return {
            "base": base,
            "quote": quote,
            "rate": round(RATES_TO_USD[base] / RATES_TO_USD[quote], 6),
        }

    @server.tool(description="The company's public holidays in a year, as ISO dates.")
    def company_holidays(year: int) -> list[str]:
        return [f"{year}-01-01", f"{year}-05-01", f"{year}-12-25"]

    return server


class LocalMcpServer(ServedApp):
    """Serves `finance_server()` on 127.0.0.1 in a thread (on `port`, or any free port);
    `url` is its MCP endpoint."""

    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        self._token = token
        app = finance_server().streamable_http_app(stateless_http=True, json_response=True)
        super().__init__(self._checked(app), port=port, name="MCP server")
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.refused = 0  # requests without the token

    def _checked(self, app: Any) -> Any:
        expected = f"Bearer {self._token}".encode() if self._token else None

        async def checked(scope: dict[str, Any], receive: Any, send: Any) -> None:
            headers = dict(scope.get("headers") or [])
            if scope["type"] == "http" and expected and headers.get(b"authorization") != expected:
                self.refused += 1
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
            await app(scope, receive, send)

        return checked
