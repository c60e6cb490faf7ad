"""The baseline: an `AssistantRunner.run_with_message` loop that one worker runs for a whole
run - create the run, retrieve it every second until it ends, run the tool calls it asks for.

Assistants v2 through the real `openai` SDK over HTTP against a local OpenAI server, polling
every second (scaled with the profile), with tool calls run by Threadline's own executor and
Data Analyst tools. Such a coroutine never yields while the synchronous client blocks, so
one thread per run stands in for one worker (one Lambda) per run.
"""

from __future__ import annotations

import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import openai
from openai.types.beta.threads import Run

from bench.measurements import LambdaUsage, ModeResult, RunMeasurement
from bench.openai_stats import RemoteRunStats, remote_run_stats
from bench.template_facts import global_function_setting, parameter_default
from bench.workload import QUESTION, Profile, RunScript
from local.openai_server import OpenAIServer
from local.stack_session import LOCAL_KEY
from threadline.assistant_config import catalogue, load_assistant
from threadline.backends.assistants import hosted_tool
from threadline.models import ToolCall
from threadline.settings import Settings
from threadline.tools import ToolContext, ToolRegistry, run_tool_calls

FAILED_STATUSES = {"failed", "cancelled", "expired"}
RUNNER_FUNCTION = "RunnerLoopFunction"  # a Lambda that runs the loop for the whole run


@dataclass(frozen=True)
class RunnerRun:
    status: str
    tool_rounds: int
    completion_seen_at: float  # epoch seconds of the retrieve that saw "completed"
    end_to_end_s: float


class AssistantRunnerLoop:
    def __init__(
        self,
        client: openai.OpenAI,
        assistant_id: str,
        tools: ToolRegistry,
        *,
        poll_interval: float,
    ) -> None:
        self.client = client
        self.assistant_id = assistant_id
        self.tools = tools
        self.poll_interval = poll_interval
        self.tool_timeout_s = Settings.model_fields["tool_timeout_seconds"].default

    def run_with_message(
        self, thread_id: str, message: str, timeout_seconds: float = 300
    ) -> RunnerRun:
        """Add the message, start a run and retrieve it every `poll_interval` until it ends."""
        started = time.monotonic()
        self.client.beta.threads.messages.create(thread_id=thread_id, role="user", content=message)
        run = self.client.beta.threads.runs.create(
            thread_id=thread_id, assistant_id=self.assistant_id
        )
        tool_rounds = 0
        while True:
            if time.monotonic() - started > timeout_seconds:
                self.client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run.id)
                raise TimeoutError(f"Run timed out after {timeout_seconds}s")
            run = self.client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run.id)
            if run.status == "completed":
                seen_at = time.time()
                self._latest_response(thread_id)  # the loop returns the answer text: read it too
                return RunnerRun(
                    status=run.status,
                    tool_rounds=tool_rounds,
                    completion_seen_at=seen_at,
                    end_to_end_s=time.monotonic() - started,
                )
            if run.status == "requires_action":
                self._handle_tool_calls(thread_id, run)
                tool_rounds += 1
            elif run.status in FAILED_STATUSES:
                raise RuntimeError(f"Run failed with status: {run.status}")
            time.sleep(self.poll_interval)

    def _handle_tool_calls(self, thread_id: str, run: Run) -> None:
        if run.required_action is None:
            raise RuntimeError(f"run {run.id} requires action but names none")
        calls = [
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in run.required_action.submit_tool_outputs.tool_calls
        ]
        caller = ToolContext(
            user_id="bench", thread_id=thread_id, run_id=run.id, assistant="data_analyst"
        )
        outputs = run_tool_calls(
            self.tools, calls, caller=caller, timeout_seconds=self.tool_timeout_s
        )
        self.client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread_id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": out.call_id, "output": out.output} for out in outputs],
        )

    def _latest_response(self, thread_id: str) -> str:
        messages = self.client.beta.threads.messages.list(
            thread_id=thread_id, order="desc", limit=1
        )
        if messages.data and messages.data[0].role == "assistant":
            first = messages.data[0].content[0]
            if first.type != "text":
                raise RuntimeError(f"the answer starts with a {first.type} block, not text")
            return first.text.value
        return ""


def measure_runner_loop(profile: Profile, scripts: list[RunScript]) -> ModeResult:
    """Run every script through the runner loop, concurrently, against a local OpenAI server."""
    server = OpenAIServer()
    base_url = server.start_background("127.0.0.1", 0)
    try:
        client = openai.OpenAI(api_key=LOCAL_KEY, base_url=base_url, max_retries=0)
        tools = ToolRegistry(
            catalogue().tools[name] for name in load_assistant("data_analyst").tools
        )
        runner = AssistantRunnerLoop(
            client,
            _create_assistant(client, tools),
            tools,
            poll_interval=profile.runner_poll_interval,
        )
        thread_ids = [client.beta.threads.create().id for _script in scripts]
        for script, thread_id in zip(scripts, thread_ids, strict=True):
            script.queue_on(server, thread_id)
        wall_started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(scripts)) as pool:
            runner_runs = list(
                pool.map(lambda thread_id: runner.run_with_message(thread_id, QUESTION), thread_ids)
            )
        wall_time = time.monotonic() - wall_started
        runs = [
            _measurement(
                script, runner_run, remote_run_stats(server, thread_id), profile.time_scale
            )
            for script, runner_run, thread_id in zip(scripts, runner_runs, thread_ids, strict=True)
        ]
    finally:
        server.stop()
    return ModeResult(
        label="runner_loop",
        description=(
            f"AssistantRunner loop, Assistants v2 over HTTP, "
            f"{profile.runner_poll_interval:g} s poll interval, one Lambda per run"
        ),
        runs=runs,
        lambda_usage=_one_lambda_per_run(runner_runs),
        wall_time_s=wall_time,
        details={"backend": "assistants", "poll_interval_s": profile.runner_poll_interval},
    )


def _create_assistant(client: openai.OpenAI, tools: ToolRegistry) -> str:
    """The Data Analyst as Threadline configures it, so both sides send the same context."""
    config = load_assistant("data_analyst")
    hosted = [hosted_tool(kind) for kind in config.hosted_tools]
    return client.beta.assistants.create(
        name=config.display_name,
        model=config.model or parameter_default("Model"),
        instructions=config.instructions,
        tools=[*tools.definitions("assistants"), *hosted],
    ).id


def _one_lambda_per_run(runner_runs: list[RunnerRun]) -> LambdaUsage:
    """The loop runs in one Lambda per run, billed for the whole run."""
    memory_mb = int(global_function_setting("MemorySize"))
    billed_ms = [max(1, math.ceil(run.end_to_end_s * 1000)) for run in runner_runs]
    return LambdaUsage(
        requests=1.0,
        gb_seconds=statistics.fmean(billed_ms) / 1000 * memory_mb / 1024,
        invocations={RUNNER_FUNCTION: 1.0},
        billed_ms_median={RUNNER_FUNCTION: statistics.median(billed_ms)},
    )


def _measurement(
    script: RunScript, runner_run: RunnerRun, stats: RemoteRunStats, time_scale: float
) -> RunMeasurement:
    detection = round(runner_run.completion_seen_at - stats.model_finished_at, 3)
    return RunMeasurement(
        run_index=script.index,
        length_s=script.length_s,
        status=runner_run.status,
        tool_rounds=runner_run.tool_rounds,
        status_calls=stats.status_calls,
        state_transitions=0,
        lambda_invocations=1,
        detection_delay_s=detection,
        check_intervals_s=stats.check_intervals_s,
        check_latency_s=stats.check_latency_s(detection),
        end_to_end_s=round(runner_run.end_to_end_s, 3),
    )
