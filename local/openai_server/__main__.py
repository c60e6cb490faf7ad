"""`python -m local.openai_server --port N`: serve the local OpenAI server on 127.0.0.1."""

from __future__ import annotations

import argparse
import contextlib

from local.openai_server.server import OpenAIServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.openai_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per model turn")
    parser.add_argument("--webhook-url", help="POST response.* events here")
    parser.add_argument("--webhook-secret", help="whsec_... used to sign the events")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    if bool(args.webhook_url) != bool(args.webhook_secret):
        parser.error("--webhook-url and --webhook-secret go together")
    server = OpenAIServer(
        latency_seconds=args.latency,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop
        server.serve(
            args.host,
            args.port,
            ready=lambda url: print(url, flush=True),
            log_requests=not args.quiet,
        )


if __name__ == "__main__":
    main()
