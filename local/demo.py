"""`make demo`: the whole product on this machine, told as a story a user can follow.

Every step goes through the local API over HTTP, as a client would; the outcome of each step
is checked and the demo exits non-zero if one is not what the story expects. Handler logs go
to a file whose path is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime
from typing import Any

import boto3
import requests
from standardwebhooks import Webhook
from websockets.sync.client import connect

from local.aws import fire_schedule
from local.callback_receiver import CallbackReceiver
from local.event_log import event_log
from local.stack_session import REPO, LocalThreadline, local_threadline
from local.tokens import issue_token

LOG_FILE = REPO / ".local" / "demo.log"
EVENTS_FILE = REPO / ".local" / "demo-events.jsonl"
QUESTION = "What is our revenue by region?"
FOLLOW_UP = "And which are the top products?"
LAST_QUESTION = "Which region should we focus on?"
EXPORT_QUESTION = "Export our revenue by region as a CSV file."
# Short, so that the tool run (two 2 s turns) is handed to the Standard tier before the end.
EXPRESS_TIER_SECONDS = 3


class StoryFailed(Exception):
    pass


class Api:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"content-type": "application/json"}
            | ({"authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310: its own http URL
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None


def say(text: str = "") -> None:
    print(text, file=sys.__stdout__, flush=True)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StoryFailed(what)
    say(f"    ok  {what}")


def ask(product: LocalThreadline, api: Api, thread_id: str, question: str) -> dict[str, Any]:
    return answered(product, api, started(api, thread_id, question))


def started(api: Api, thread_id: str, question: str) -> dict[str, Any]:
    say(f'\n  alice asks: "{question}"')
    status, accepted = api.call("POST", f"/threads/{thread_id}/runs", {"message": question})
    expect(status == 202, f"run accepted (202, run {accepted and accepted.get('id')})")
    return dict(accepted)


def answered(product: LocalThreadline, api: Api, accepted: dict[str, Any]) -> dict[str, Any]:
    """The run once it ended, its course, tool calls, usage and answer printed."""
    product.wait_for_run(accepted["id"], timeout=120)
    _status, run = api.call("GET", accepted["status_url"])
    print_timeline(run)
    for call in run["tool_calls"]:
        summary = call["summary"]
        detail = (
            f"SQL {summary['sql']!r} -> {summary['row_count']} rows" if "sql" in summary else ""
        )
        say(f"      tool {call['name']:<17} {call['duration_ms']:7.1f} ms  {detail}")
    usage = run["usage"]
    say(
        f"      {run['status']} in {run['duration_seconds']:.1f} s, tokens "
        f"{usage['input_tokens']} in / {usage['output_tokens']} out / {usage['total_tokens']}"
    )
    say(f"      answer: {run['output_text']}")
    expect(run["status"] == "completed", "run completed")
    return run


def watched(product: LocalThreadline, user: str, thread_id: str, run_id: str) -> list[Any]:
    """The run's updates as a client subscribed to it receives them, until its final view,
    each printed with when it arrived."""
    if product.websocket is None:
        raise StoryFailed("the WebSocket API is not served")
    updates: list[Any] = []
    began = time.monotonic()
    with connect(f"{product.websocket.url}?token={issue_token(user)}") as socket:
        socket.send(json.dumps({"action": "subscribe", "thread_id": thread_id, "run_id": run_id}))
        # Until the final view and every update before it (they may arrive out of order).
        last: int | None = None
        while last is None or len({update["seq"] for update in updates}) < last:
            message = json.loads(socket.recv(timeout=120))
            if "seq" not in message:
                continue  # `subscribed`
            updates.append(message)
            if message["type"] == "run.view":
                last = message["seq"]
            say(f"      +{time.monotonic() - began:5.2f} s  #{message['seq']:<2} {_shown(message)}")
    once = {update["seq"]: update for update in updates}  # a post repeated is dropped
    return [once[seq] for seq in sorted(once)]


def _shown(update: dict[str, Any]) -> str:
    match update["type"]:
        case "run.status":
            return f"run.status   {update['status']}"
        case "tool.calls":
            return "tool.calls   " + ", ".join(call["name"] for call in update["calls"])
        case "text.delta":
            return f"text.delta   {update['delta']!r}"
        case _:
            return f"{update['type']:<12} {update['run']['status']}"


def print_timeline(run: dict[str, Any]) -> None:
    """The run's course as its run view tells it (an Express execution keeps no history)."""
    created = datetime.fromisoformat(run["created_at"])
    for entry in run["timeline"]:
        offset = (datetime.fromisoformat(entry["at"]) - created).total_seconds()
        checks = f"after {entry['checks']} status check(s)" if entry["checks"] else ""
        if entry["woken_by_webhook"]:
            checks += f", {entry['woken_by_webhook']} woken by webhook"
        say(f"      {offset:6.2f} s  {entry['step']:<17} {entry['tier']:<9} {checks}")


def expect_callback(product: LocalThreadline, receiver: CallbackReceiver, run_id: str) -> None:
    """The run's callback arrived at the receiver, signed with the deployment's secret."""
    (callback,) = receiver.wait_for(1)
    secret = product.stack.resources["CallbackSigningSecret"]
    signing_secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret)
    payload = Webhook(signing_secret["SecretString"]).verify(callback.body, callback.headers)
    expect(
        payload["type"] == "run.completed" and payload["data"]["id"] == run_id,
        f"its callback arrived: POST {callback.path}, {payload['type']}, "
        f"webhook-id {callback.headers['webhook-id']}, signature verified (standardwebhooks)",
    )


def story(product: LocalThreadline, base_url: str, receiver: CallbackReceiver) -> None:
    alice = Api(base_url, issue_token("alice"))
    say("\n1. alice gets a thread for her analysis")
    status, thread = alice.call("POST", "/threads", {"purpose": "sales-analysis"})
    expect(status == 201, f"thread created (201, {thread and thread.get('id')})")

    say("\n2. alice uploads a CSV through the upload URL; the S3 trigger ingests it")
    csv = b"region,target\nNorth,25000\nSouth,21000\nEast,22000\nWest,24000\n"
    status, upload = alice.call(
        "POST",
        f"/threads/{thread['id']}/files",
        {"filename": "targets.csv", "content_type": "text/csv", "size": len(csv)},
    )
    expect(status == 201, "presigned POST issued (201), scoped to her thread")
    # Over HTTP, as a browser or `curl -F` would: the local AWS services are served.
    posted = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("targets.csv", csv)}, timeout=30
    ).status_code
    expect(posted in (200, 201, 204), f"uploaded straight to S3 at {upload['url']} ({posted})")
    product.stack.event_sources.wait_idle(30)
    status, files = alice.call("GET", f"/threads/{thread['id']}/files")
    (ingested,) = files["files"]
    expect(
        ingested["status"] == "ingested",
        f"IngestUpload checked it and handed it to OpenAI ({ingested['status']})",
    )
    answer = ask(product, alice, thread["id"], "Which file did I upload?")
    expect("targets.csv" in (answer["output_text"] or ""), "the next run can use the file")

    say("\n3. the Data Analyst answers with query_database, driven by the state machine;")
    say("   alice watches it over the WebSocket API, the answer arriving as it is written")
    accepted = started(alice, thread["id"], QUESTION)
    updates = watched(product, "alice", thread["id"], accepted["id"])
    first = answered(product, alice, accepted)
    expect(first["tool_rounds"] >= 1, "the model asked for a tool and got its output")
    expect(
        [update["seq"] for update in updates] == list(range(1, len(updates) + 1))
        and updates[-1]["run"]["output_text"] == first["output_text"],
        f"{len(updates)} updates, numbered 1-{len(updates)}, the last the run's final view",
    )

    say("\n4. a second question reuses the same thread; one typed while it runs waits its turn")
    status, again = alice.call("POST", "/threads", {"purpose": "sales-analysis"})
    expect(status == 200 and again["id"] == thread["id"], "same thread returned (200)")
    follow_up = started(alice, thread["id"], FOLLOW_UP)
    say(f'\n  alice asks at once: "{LAST_QUESTION}" (if_busy=enqueue, callback_url={receiver.url})')
    status, queued = alice.call(
        "POST",
        f"/threads/{thread['id']}/runs",
        {
            "message": LAST_QUESTION,
            "if_busy": "enqueue",
            "callback_url": f"{receiver.url}/alice/runs",
        },
    )
    expect(
        status == 202 and queued["status"] == "queued" and queued["queue_position"] == 1,
        "accepted (202) and queued, first in line, while the thread is busy",
    )
    earlier = answered(product, alice, follow_up)
    say(f'\n  then "{LAST_QUESTION}" starts')
    later = answered(product, alice, queued)
    expect(later["started_at"] >= earlier["finished_at"], "it started when the thread freed")
    expect_callback(product, receiver, queued["id"])
    status, messages = alice.call("GET", f"/threads/{thread['id']}/messages?order=asc")
    expect(
        status == 200 and len(messages["messages"]) == 8,
        "the thread's history holds all four questions and their answers, in order",
    )

    say("\n5. other people cannot see alice's thread")
    status, _ = Api(base_url, None).call("GET", f"/threads/{thread['id']}")
    expect(status == 401, "no token -> 401")
    status, answer = Api(base_url, issue_token("bob")).call("GET", f"/threads/{thread['id']}")
    expect(status == 404, f"bob's token -> 404 ({answer['error']['code']})")
    status, _ = Api(base_url, "not-a-token").call("GET", "/threads")
    expect(status == 401, "a forged token -> 401")

    approval_story(product, base_url, alice, thread["id"])
    cleanup_story(product, base_url, alice, thread["id"])


def approval_story(product: LocalThreadline, base_url: str, alice: Api, thread_id: str) -> None:
    say("\n6. an export needs alice's approval: the run waits for her at no cost")
    accepted = started(alice, thread_id, EXPORT_QUESTION)
    deadline = time.monotonic() + 60
    while (run := alice.call("GET", accepted["status_url"])[1])["status"] != "requires_approval":
        if run["status"] in ("completed", "failed") or time.monotonic() > deadline:
            raise StoryFailed(f"the export run is {run['status']}, not waiting for approval")
        time.sleep(0.1)
    [pending] = run["pending_approvals"]
    say(f"      waits for: {pending['tool']} {pending['arguments']}")
    decision = {"decisions": [{"call_id": pending["call_id"], "approve": True}]}
    approvals = f"{accepted['status_url']}/approvals"
    status, _ = Api(base_url, issue_token("bob")).call("POST", approvals, decision)
    expect(status == 404, "bob cannot answer for alice (404)")
    status, _ = alice.call("POST", approvals, decision)
    expect(status == 200, "alice approves (POST .../approvals); the run goes on")
    run = answered(product, alice, accepted)
    [csv_file] = run["files"]
    expect(
        run["tool_calls"][0]["approval"] == "approved" and csv_file["filename"].endswith(".csv"),
        f"the approved export ran: {csv_file['filename']} ({csv_file['bytes']} bytes) to download",
    )


def published(product: LocalThreadline) -> None:
    """What the story published on the event bus, as a rule on it received."""
    kinds = Counter(
        json.loads(line)["detail-type"] for line in EVENTS_FILE.read_text().splitlines()
    )
    say("\n8. every change was published once to the event bus (make events follows them)")
    expect(
        # alice's five questions, the export's wait for her approval, and her upload
        kinds["Run Started"] == kinds["Run Completed"] == 5
        and kinds["Run Requires Approval"] == 1
        and kinds["Upload Ingested"] == 1,
        ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())),
    )


def cleanup_story(product: LocalThreadline, base_url: str, alice: Api, thread_id: str) -> None:
    say("\n7. the scheduled cleanup removes a stale thread and all it owns")
    bob = Api(base_url, issue_token("bob"))
    status, old = bob.call("POST", "/threads", {"purpose": "last-quarter"})
    expect(status == 201, f"bob has a thread ({old['id']})")
    # Move the clock for bob's thread: its last activity goes back past the 7-day retention.
    product.table.update_item(
        Key={"PK": "USER#bob", "SK": f"THREAD#{old['id']}"},
        UpdateExpression="SET last_activity = :old, GSI1SK = :old",
        ExpressionAttributeValues={":old": "2020-01-01T00:00:00.000000Z"},
    )
    report = fire_schedule(product.stack, "CleanupFunction")
    say(
        f"      cleanup: {report['threads_deleted']} thread(s), {report['files_deleted']} file(s), "
        f"{report['bytes_deleted']} bytes deleted; {len(report['failures'])} failure(s)"
    )
    status, _ = bob.call("GET", f"/threads/{old['id']}")
    expect(status == 404, "bob's stale thread is gone (404)")
    status, _ = alice.call("GET", f"/threads/{thread_id}")
    expect(status == 200, "alice's active thread is untouched")


def main() -> int:
    LOG_FILE.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    # Push mode needs OpenAI's webhooks to reach this machine, which only the local server can.
    wait_mode = os.environ.get("RUN_WAIT_MODE") or (
        "poll" if os.environ.get("OPENAI_API_KEY") else "push"
    )
    say("Threadline demo: moto from template.yaml, the real state machine in moto's ASL")
    say("interpreter, the real handlers, and a local OpenAI-compatible server (2 s per turn).")
    say(
        f"Runs start in the Express tier, checked every second; one still going after "
        f"{EXPRESS_TIER_SECONDS} s (180 s when deployed) continues in the Standard state machine,"
    )
    say(f"which waits by {wait_mode} (RUN_WAIT_MODE=poll|push to choose).")
    say(f"Handler logs: {LOG_FILE.relative_to(REPO)}")
    with LOG_FILE.open("w") as log, contextlib.redirect_stdout(log):
        try:
            with local_threadline(
                parameters={
                    "PollInitialSeconds": "1",
                    "PollMaxSeconds": "4",
                    "RunWaitMode": wait_mode,
                    "ExpressTierSeconds": str(EXPRESS_TIER_SECONDS),
                    "ExpressPollSeconds": "1",
                },
                openai_latency_seconds=2.0,
                aws_port=0,  # served, so the upload goes over HTTP as a user's would
                websocket_port=0,  # and the WebSocket API runs stream on
            ) as product:
                api = product.http_api()
                base_url = api.start()
                EVENTS_FILE.unlink(missing_ok=True)
                try:
                    with CallbackReceiver() as receiver, event_log(product.stack, EVENTS_FILE):
                        story(product, base_url, receiver)
                finally:
                    api.stop()
                published(product)
        except StoryFailed as failure:
            say(f"\nFAILED: {failure}  (see {LOG_FILE.relative_to(REPO)})")
            return 1
    say(f"\nThe story held, end to end, in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
