"""The scripted workload every mode runs: the same questions, tool rounds and per-turn model
latencies, queued per thread (conversation) id on the local OpenAI server."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from bench.template_facts import parameter_default
from local.openai_server import OpenAIServer, Step

QUESTION = "How is revenue split by region, and which products sell best?"
ANSWER = "Revenue is led by the North region; the top products are listed above."
# What the model asks for in tool rounds 1, 2 and 3 (one Data Analyst call per round).
TOOL_ROUND_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("get_table_schema", {"table_name": "sales"}),
    (
        "query_database",
        {"query": "SELECT region, ROUND(SUM(amount), 2) AS revenue FROM sales GROUP BY region"},
    ),
    (
        "query_database",
        {
            "query": "SELECT p.name, ROUND(SUM(s.amount), 2) AS revenue FROM sales s "
            "JOIN products p ON p.id = s.product_id GROUP BY p.id ORDER BY revenue DESC LIMIT 5"
        },
    ),
)


@dataclass(frozen=True)
class RunScript:
    """One run of the workload: its tool rounds and the model's latency for every turn."""

    index: int
    tool_rounds: int
    turn_latencies_s: tuple[float, ...]  # one per model turn: tool_rounds + 1
    length_s: float = 0.0  # the nominal length (unscaled) the run stands for

    def steps(self) -> list[Step]:
        """The run's turns, each taking its own latency."""
        calls = [
            Step.call(*TOOL_ROUND_CALLS[round_index]) for round_index in range(self.tool_rounds)
        ]
        turns = [*calls, Step.say(ANSWER)]
        return [
            step.taking(latency) for step, latency in zip(turns, self.turn_latencies_s, strict=True)
        ]

    def queue_on(self, server: OpenAIServer, key: str) -> None:
        """Script this run's turns for the thread (or conversation) `key`."""
        server.script.extend(self.steps(), key=key)


WARM_UP = RunScript(index=-1, tool_rounds=1, turn_latencies_s=(0.0, 0.0))


@dataclass(frozen=True)
class Profile:
    """What to run for real: a run per (length, tool rounds), the length split evenly between
    the model's turns; every duration is multiplied by time_scale."""

    name: str
    run_lengths_s: tuple[float, ...]
    tool_round_counts: tuple[int, ...]
    time_scale: float
    throughput_runs: int
    cold_start_repeats: int
    # An import first, uncounted, to warm the bytecode caches; the quick smoke run skips it
    # (its figures are checked for presence, not read).
    cold_start_warm_up: bool = True
    # The Threadline designs to measure (None: every one); the quick smoke run takes the default.
    designs: tuple[str, ...] | None = None
    runner_poll_interval_s: float = 1.0  # AssistantRunner's default: one retrieve a second
    random_seed: int = 20261129

    def scripts(self) -> list[RunScript]:
        """One run per (length, tool rounds), in that order. The last turn ends a seeded
        fraction of a second late, so that the end falls anywhere between two checks of a
        one-second poll (whole-second lengths would favour whoever polls on whole seconds)."""
        draw = random.Random(self.random_seed)
        scripts: list[RunScript] = []
        for length in self.run_lengths_s:
            for tool_rounds in self.tool_round_counts:
                turn = length * self.time_scale / (tool_rounds + 1)
                phase = draw.random() * self.time_scale
                turns = (*((round(turn, 3),) * tool_rounds), round(turn + phase, 3))
                scripts.append(RunScript(len(scripts), tool_rounds, turns, length))
        return scripts

    def instant_scripts(self, count: int) -> list[RunScript]:
        """`count` runs of 0..3 tool rounds whose model answers at once (throughput)."""
        rounds = [index % (len(TOOL_ROUND_CALLS) + 1) for index in range(count)]
        return [RunScript(index, k, (0.0,) * (k + 1)) for index, k in enumerate(rounds)]

    @property
    def runner_poll_interval(self) -> float:
        return self.runner_poll_interval_s * self.time_scale

    def stack_parameters(self) -> dict[str, str]:
        """The template's defaults where the local stack sets its own for tests, every
        duration scaled (whole seconds where the template takes whole seconds)."""
        scaled = {
            name: f"{float(parameter_default(name)) * self.time_scale:g}"
            for name in ("PollInitialSeconds", "PollMaxSeconds")
        } | {
            name: str(round(float(parameter_default(name)) * self.time_scale))
            for name in (
                "ExpressTierSeconds",
                "ExpressPollSeconds",
                "WebhookWaitSeconds",
                "WebhookWaitMaxSeconds",
            )
        }
        return {**scaled, "RunWaitMode": parameter_default("RunWaitMode")}

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "runner_poll_interval": self.runner_poll_interval,
            "stack_parameters": self.stack_parameters(),
        }


# Measured for real; longer runs are modelled from these (bench.run_lengths).
FULL = Profile(
    name="full",
    run_lengths_s=(5, 30, 120),
    tool_round_counts=(0, 1, 3),
    time_scale=1.0,
    throughput_runs=20,
    cold_start_repeats=5,
)
QUICK = Profile(
    name="quick",
    run_lengths_s=(5, 30),
    tool_round_counts=(0, 1),
    time_scale=0.1,
    throughput_runs=3,
    cold_start_repeats=1,
    cold_start_warm_up=False,
    designs=("threadline",),
)
