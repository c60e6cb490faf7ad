"""Fire a function's schedule on demand.

In-process, call `local.aws.fire_schedule(stack, "CleanupFunction")`. A running local stack
(`make serve`) offers the same as `POST /_local/schedules/{function}` once its HTTP API routes
requests through `schedule_admin_response`: the optional JSON body replaces the schedule's
Input (or the scheduled event's detail), `?event=Name` picks one of several schedules. This
module's command line calls that route:

    python -m local.aws.fire CleanupFunction [--event Nightly] [--input '{"older_than_days": 0}']
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Request, Response

from local.aws.event_sources import AmbiguousSchedule, ScheduleNotFound, fire_schedule
from local.aws.local_stack import FunctionInvocationError, LocalStack

SCHEDULES_PATH = "/_local/schedules/"


def schedule_admin_response(stack: LocalStack, request: Request) -> Response | None:
    """The response to `POST /_local/schedules/{function}` (the function's result, or an error
    as `{"error": {"code", "message", "details"}}`); None for any other path."""
    if not request.path.startswith(SCHEDULES_PATH):
        return None
    if request.method != "POST":
        response = _error(405, "MethodNotAllowed", "POST fires the schedule")
        response.headers["Allow"] = "POST"
        return response
    body = request.get_data()
    try:
        override = json.loads(body) if body.strip() else None
    except json.JSONDecodeError as error:
        return _error(400, "InvalidJson", f"the body is not JSON: {error}")
    return _fire(
        stack, request.path.removeprefix(SCHEDULES_PATH), request.args.get("event"), override
    )


def _fire(stack: LocalStack, function: str, event_name: str | None, override: Any) -> Response:
    try:
        result = fire_schedule(stack, function, event_name=event_name, detail_override=override)
    except ScheduleNotFound as error:
        return _error(404, "ScheduleNotFound", str(error))
    except AmbiguousSchedule as error:
        return _error(400, "AmbiguousSchedule", str(error))
    except FunctionInvocationError as error:
        return _error(502, "FunctionError", str(error), error.payload)
    return _json(200, {"function": function, "result": result})


def _error(status: int, code: str, message: str, details: Any = None) -> Response:
    return _json(status, {"error": {"code": code, "message": message, "details": details}})


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fire a function's schedule on `make serve`.")
    parser.add_argument("function", help="the function's logical id or name")
    parser.add_argument("--event", help="which schedule, when the function has several")
    parser.add_argument("--input", help="JSON replacing the schedule's Input (or the detail)")
    parser.add_argument(
        "--url",
        default=f"http://127.0.0.1:{os.environ.get('PORT', '3000')}",
        help="the local stack (default: http://127.0.0.1:$PORT, PORT defaulting to 3000)",
    )
    arguments = parser.parse_args(argv)
    if arguments.input is not None:
        try:
            json.loads(arguments.input)
        except json.JSONDecodeError as error:
            parser.error(f"--input is not JSON: {error}")
    query = f"?{urlencode({'event': arguments.event})}" if arguments.event else ""
    request = urllib.request.Request(
        f"{arguments.url.rstrip('/')}{SCHEDULES_PATH}{quote(arguments.function)}{query}",
        method="POST",
        data=(arguments.input or "").encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # nosec B310: a local http URL
            print(json.dumps(json.loads(response.read()), indent=2))
            return 0
    except urllib.error.HTTPError as error:
        print(f"{error.code}: {error.read().decode()}", file=sys.stderr)
    except urllib.error.URLError as error:
        print(f"cannot reach {arguments.url} ({error.reason}): is it running?", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
