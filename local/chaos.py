"""`make chaos`: many runs, and an upload per thread, through the local stack while the local
OpenAI server fails a share of its requests in every way it can (HTTP 429 and 500, connection
resets, replies lost after the work was done, replies held past the client's timeout), then
the invariants are checked:

- every run reached a terminal state, and no thread lock is held;
- every thread is usable: a last run on it, with the faults off, completes;
- no message is in a thread's history twice;
- no remote object outlives its thread: after every thread is deleted, nothing is left;
- every token the server spent for a user is in that user's ledger, once;
- each run's start and end were published to the event bus once each, and nothing else.

Seeded: the same seed gives the same fault for the same request sequence (thread scheduling
still varies between runs, so the figures may, the invariants must not).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from local.aws.s3_browser import post_presigned
from local.event_log import event_log
from local.openai_server import Fault, OpenAIServer
from local.openai_server.assistants_api import _text_of
from local.openai_server.responses_api import message_text
from local.stack_session import REPO, LocalThreadline, local_threadline

LOG_FILE = REPO / ".local" / "chaos.log"
CONFIGURATIONS = ("responses-poll", "responses-push", "assistants-poll")
UPLOADS = (  # one per thread, in turn: for file search (a vector store) or code interpreter
    ("notes.md", b"# Targets\nNorth: 120k, South: 90k\n", "text/markdown"),
    ("targets.csv", b"region,target\nNorth,120000\nSouth,90000\n", "text/csv"),
)
QUESTIONS = (  # the local model's playbook: plain answers and tool-calling ones
    "Hello there",
    "What is our revenue by region?",
    "Which are the top products?",
    "How many customers per region?",
    "Show the table schema",
)
SDK_TIMEOUT_SECONDS = 2.0  # generous: a busy machine must not time out what no fault held
FAULTS = (
    Fault.http_error(429, retry_after=1),
    Fault.http_error(500),
    Fault.reset(),
    Fault.lost_reply(),
    Fault.slow_reply(SDK_TIMEOUT_SECONDS + 0.5),
)
PURGE_ATTEMPTS = 5
WEBHOOK_DRAIN_SECONDS = 600
# OpenAI retries a webhook for three days; the local server's few quick retries stand in.
WEBHOOK_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 2.0)


@dataclass
class Report:
    configuration: str
    runs: int = 0
    runs_terminal: int = 0
    runs_completed: int = 0
    threads: int = 0
    threads_usable: int = 0
    duplicate_messages: int = 0
    orphaned_objects: dict[str, int] = field(default_factory=dict)
    tokens_spent: int = 0
    tokens_not_in_ledger: int = 0
    events_off: int = 0  # run events missing or published more than once
    locks_held: int = 0
    uploads: dict[str, int] = field(default_factory=dict)  # by the status they ended in
    faults_injected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def holds(self) -> bool:
        return (
            self.runs_terminal == self.runs
            and self.threads_usable == self.threads
            and self.duplicate_messages == 0
            and not any(self.orphaned_objects.values())
            and self.tokens_not_in_ledger == 0
            and self.events_off == 0
            and self.locks_held == 0
        )


def run_chaos(
    configuration: str, *, runs: int, threads: int, users: int, rate: float, seed: int
) -> Report:
    backend, mode = configuration.split("-")
    parameters = {
        "Backend": backend,
        "RunWaitMode": mode,
        "OpenAITimeoutSeconds": f"{SDK_TIMEOUT_SECONDS:g}",
        "WebhookWaitSeconds": "5",
        # Runs start in the Express tier, as deployed, and most cross the hand-off.
        "ExpressTierSeconds": "2",
    }
    started = time.monotonic()
    report = Report(configuration=configuration, runs=runs, threads=threads)
    events_file = REPO / ".local" / f"chaos-events-{configuration}-{seed}.jsonl"
    events_file.parent.mkdir(exist_ok=True)
    events_file.unlink(missing_ok=True)
    with (
        local_threadline(parameters=parameters, webhooks=backend == "responses") as product,
        event_log(product.stack, events_file),
    ):
        server = product.openai
        if server is None:
            raise SystemExit("chaos needs the local OpenAI server: unset OPENAI_API_KEY")
        server.webhook_dispatcher.retry_delays = WEBHOOK_RETRY_DELAYS
        from threadline import runtime  # configured by the local stack only now

        owners = [f"chaos-user-{n}" for n in range(users)]
        made = [_new_thread(runtime, owners[n % users], n) for n in range(threads)]
        server.faults.randomly(rate=rate, seed=seed, kinds=FAULTS)
        rng = random.Random(seed)  # nosec B311: a reproducible plan, not a secret
        plan = [[rng.choice(QUESTIONS) for _ in range(runs // threads)] for _ in made]
        plan[0].extend(rng.choice(QUESTIONS) for _ in range(runs % threads))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = list(
                pool.map(
                    lambda job: _drive(product, *job),
                    zip(made, plan, itertools.cycle(UPLOADS), strict=False),
                )
            )
        server.faults.clear()
        _drain_webhooks(server)
        product.stack.event_sources.wait_idle(60)  # ingests still being retried
        report.uploads = dict(
            Counter(
                record.status.value
                for t in made
                for record in runtime.current().uploads().list_files(t.user_id, t.thread_id)
            )
        )
        for statuses in outcomes:
            report.runs_terminal += sum(status.is_terminal for status in statuses)
            report.runs_completed += sum(status.value == "completed" for status in statuses)
        report.faults_injected = dict(server.stats.snapshot().get("faults", {}))
        report.locks_held = sum(
            runtime.current().thread_store().get(t.user_id, t.thread_id).active_run_id is not None
            for t in made
        )
        report.duplicate_messages = sum(_duplicates(server, runtime, t) for t in made)
        report.threads_usable = sum(_last_run_completes(product, t) for t in made)
        _drain_webhooks(server)
        product.stack.event_sources.wait_idle(60)
        expected = _run_events_expected(product, made)
        spent = tokens_by_user(server)
        report.tokens_spent = sum(spent.values())
        report.tokens_not_in_ledger = sum(
            abs(tokens - runtime.current().usage_ledger().today(user).total_tokens)
            for user, tokens in spent.items()
        )
        for thread in made:
            _delete(runtime, thread)
        report.orphaned_objects = _left_at(server)
    published = Counter(
        event["detail"]["event_id"]
        for event in map(json.loads, events_file.read_text().splitlines())
        if "run_id" in event["detail"]
    )
    report.events_off = sum(((published - expected) + (expected - published)).values())
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _drain_webhooks(server: OpenAIServer) -> None:
    """Wait until every webhook was delivered or given up: a backlog (hundreds of responses,
    each handled in turn) must not be read as responses nobody counted."""
    if not server.flush_webhooks(timeout=WEBHOOK_DRAIN_SECONDS):
        raise TimeoutError(f"webhooks still queued after {WEBHOOK_DRAIN_SECONDS} s")


def _delete(runtime: Any, thread: Any) -> None:
    """Delete the thread as cleanup does, trying again while OpenAI fails transiently (the
    hourly cleanup retries a thread it could not finish on its next pass)."""
    from threadline.errors import TransientBackendError

    current = runtime.current().thread_store().get(thread.user_id, thread.thread_id)
    runtime.current().thread_store().claim_for_purge(current, idle_for=timedelta(0))
    for attempt in range(PURGE_ATTEMPTS):
        try:
            runtime.current().cleaner().purge(current)
        except TransientBackendError:
            if attempt == PURGE_ATTEMPTS - 1:
                raise
        else:
            return


def _new_thread(runtime: Any, user_id: str, index: int) -> Any:
    backend = runtime.current().backend()
    thread, _ = (
        runtime.current()
        .thread_creator()
        .get_or_create(
            user_id,
            f"chaos-{index}",
            reuse_for=timedelta(hours=1),
            backend=backend.name,
            create_remote=backend.create_thread,
            delete_remote=backend.delete_thread,
        )
    )
    return thread


def _drive(
    product: LocalThreadline, thread: Any, questions: list[str], upload: tuple[str, bytes, str]
) -> list[Any]:
    """One thread's upload, then its runs, one after the other as its lock allows (the
    upload is ingested meanwhile); the runs' final statuses."""
    from threadline import runtime

    filename, content, content_type = upload
    ticket = (
        runtime.current()
        .uploads()
        .create_upload(thread.user_id, thread.thread_id, filename, content_type, len(content))
    )
    status = post_presigned(ticket.url, ticket.fields, filename, content)
    if status >= 300:
        raise RuntimeError(f"the upload was refused by S3: {status}")
    return [
        _run_to_the_end(product, thread, f"[{number}] {question}")
        for number, question in enumerate(questions)
    ]


def _run_to_the_end(product: LocalThreadline, thread: Any, message: str) -> Any:
    """Start a run as the API does (in the Express tier) and wait for its executions to end;
    the run's recorded status."""
    from threadline import runtime

    execution_arn = product.start_run(thread.thread_id, thread.user_id, message, tier="express")
    run_id = execution_arn.rsplit(":", 1)[-1]
    product.wait_for_run(run_id, timeout=600)
    return runtime.current().run_store().get(thread.thread_id, run_id).status


def history_at_server(server: OpenAIServer, thread: Any) -> list[tuple[str, str]]:
    """(role, text) of the messages the model sees on the next run of `thread` (its current
    record): the chain up to its head, or the Assistants thread's messages."""
    with server.lock:
        if thread.backend == "assistants":
            messages = server.state.threads[thread.remote_id].messages
            return [(m["role"], _text_of(m)) for m in messages]
        if thread.head_response_id is None:
            return []
        head = server.state.responses[thread.head_response_id]
        return [
            (item["role"], message_text(item))
            for item in head.context + head.body["output"]
            if item["type"] == "message"
        ]


def _run_events_expected(product: LocalThreadline, threads: list[Any]) -> Counter[str]:
    """The `event_id`s the threads' runs should have published once each: its start if it
    started, its end if it ended."""
    from threadline.runs.records import RunRecord

    expected: Counter[str] = Counter()
    for thread in threads:
        items = product.table.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :run)",
            ExpressionAttributeValues={":pk": f"THREAD#{thread.thread_id}", ":run": "RUN#"},
            ConsistentRead=True,
        )["Items"]
        for run in map(RunRecord.model_validate, items):
            if run.started_at is not None:
                expected[f"{run.run_id}.in_progress"] += 1
            if run.status.is_terminal:
                expected[f"{run.run_id}.{run.status.value}"] += 1
    return expected


def _duplicates(server: OpenAIServer, runtime: Any, thread: Any) -> int:
    """Messages in the history more than once (every question carries its run's number)."""
    current = runtime.current().thread_store().get(thread.user_id, thread.thread_id)
    asked = Counter(text for role, text in history_at_server(server, current) if role == "user")
    return sum(count - 1 for count in asked.values())


def _last_run_completes(product: LocalThreadline, thread: Any) -> bool:
    return _run_to_the_end(product, thread, "Are you still there?").value == "completed"


def tokens_by_user(server: OpenAIServer) -> Counter[str]:
    """Every token the server's model spent, by the user named in the object's metadata."""
    spent: Counter[str] = Counter()
    with server.lock:
        for record in server.state.responses.values():
            user = (record.body.get("metadata") or {}).get("user")
            if user and record.body.get("usage"):
                spent[user] += record.body["usage"]["total_tokens"]
        for run in server.state.runs.values():
            user = (run.body.get("metadata") or {}).get("user_id")
            if user and run.body.get("usage"):
                spent[user] += run.body["usage"]["total_tokens"]
    return spent


def _left_at(server: OpenAIServer) -> dict[str, int]:
    """What is still at the server once every thread was deleted (assistants are shared
    configuration, not a thread's)."""
    with server.lock:
        state = server.state
        return {
            "responses": len(state.responses),
            "conversations": len(state.conversations),
            "threads": len(state.threads),
            "files": len(state.files),
            "vector_stores": len(state.vector_stores),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per configuration")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.2, help="share of requests faulted")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS))
    args = parser.parse_args()
    LOG_FILE.parent.mkdir(exist_ok=True)
    reports = []
    print(f"Threadline chaos: {args.rate:.0%} of OpenAI requests faulted, seed {args.seed}.")
    print(f"Handler logs: {LOG_FILE.relative_to(REPO)}")
    with LOG_FILE.open("w") as log, contextlib.redirect_stdout(log):
        for configuration in args.configurations.split(","):
            report = run_chaos(
                configuration,
                runs=args.runs,
                threads=args.threads,
                users=args.users,
                rate=args.rate,
                seed=args.seed,
            )
            reports.append(report)
            print(_row(report), file=sys.__stdout__, flush=True)
    (REPO / ".local" / "chaos.json").write_text(json.dumps([asdict(r) for r in reports], indent=2))
    return 0 if all(report.holds for report in reports) else 1


def _row(report: Report) -> str:
    orphans = sum(report.orphaned_objects.values())
    return (
        f"{report.configuration:16} runs {report.runs_terminal}/{report.runs} terminal "
        f"({report.runs_completed} completed), threads usable {report.threads_usable}/"
        f"{report.threads}, duplicate messages {report.duplicate_messages}, orphans {orphans}, "
        f"tokens not in ledger {report.tokens_not_in_ledger}/{report.tokens_spent}, "
        f"run events off {report.events_off}, "
        f"locks held {report.locks_held}, uploads {report.uploads}, "
        f"faults {sum(report.faults_injected.values())} "
        f"{report.faults_injected}, {report.seconds:.0f} s "
        f"{'HOLDS' if report.holds else 'BROKEN'}"
    )


if __name__ == "__main__":
    sys.exit(main())
