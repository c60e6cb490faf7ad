"""`make serve`: the local stack left running on 127.0.0.1 (like `sam local start-api`)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from local.console.server import Console
from local.event_log import event_log
from local.mcp_server import LocalMcpServer
from local.stack_session import REPO, local_threadline
from local.tokens import issue_token

LOG_FILE = REPO / ".local" / "serve.log"
EVENTS_FILE = REPO / ".local" / "events.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--mcp-port", type=int, default=8765, help="the local MCP server's")
    parser.add_argument("--aws-port", type=int, default=4566, help="the local AWS services'")
    parser.add_argument("--stream-port", type=int, default=3001, help="the WebSocket API's")
    parser.add_argument("--console-port", type=int, default=3100, help="the local console's")
    arguments = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    LOG_FILE.parent.mkdir(exist_ok=True)
    with (
        contextlib.ExitStack() as stack,
        LOG_FILE.open("a") as log,
        contextlib.redirect_stdout(log),
        local_threadline(
            parameters={
                "PollInitialSeconds": "1",
                "PollMaxSeconds": "5",
                "ExpressPollSeconds": "1",
            },
            schedule_time_scale=1.0,
            aws_port=arguments.aws_port,
            websocket_port=arguments.stream_port,
        ) as product,
        event_log(product.stack, EVENTS_FILE),
        LocalMcpServer(port=arguments.mcp_port) as mcp,
    ):
        api = product.http_api()
        base_url = api.start(arguments.port)
        console = stack.enter_context(Console(product, base_url, port=arguments.console_port))
        token = issue_token("alice")
        print(
            f"The local console: {console.url}\n\n"
            f"Threadline is serving on {base_url} (logs: {LOG_FILE.relative_to(REPO)}; "
            f"events: {EVENTS_FILE.relative_to(REPO)}, `make events` follows them)\n\n"
            f"  TOKEN=$(make -s token USER=alice)\n"
            f'  curl -s -X POST {base_url}/threads -H "Authorization: Bearer $TOKEN" '
            f"-H 'content-type: application/json' -d '{{\"purpose\": \"sales\"}}'\n\n"
            f"A token for alice, valid for an hour:\n  {token}\n\n"
            f"Runs stream on {console.stream_url}?token=$TOKEN (docs/streaming.md)\n\n"
            f"A remote MCP server for assistants' mcp_servers (README): {mcp.url}\n\n"
            f"The local AWS services (presigned upload URLs point here):\n"
            f"  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
            f"AWS_DEFAULT_REGION=us-east-1\n"
            f"  aws --endpoint-url {product.aws_endpoint} stepfunctions list-executions "
            f"--state-machine-arn {product.stack.state_machines['RunExpressStateMachine']}\n"
            f"  aws --endpoint-url {product.aws_endpoint} s3 ls "
            f"s3://{product.stack.resources['FilesBucket']} --recursive\n\n"
            "Ctrl-C stops it.",
            file=sys.__stdout__,
            flush=True,
        )
        stop.wait()
        api.stop()
    print("stopped", file=sys.__stdout__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
