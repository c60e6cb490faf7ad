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
    """How much to run, and the latency profile; every duration is multiplied by time_scale."""

    name: str
    runs: int
    time_scale: float
    throughput_runs: int
    cold_start_repeats: int
    model_latency_range_s: tuple[float, float] = (2.0, 10.0)
    max_tool_rounds: int = len(TOOL_ROUND_CALLS)
    runner_poll_interval_s: float = 1.0  # AssistantRunner's default: one retrieve a second
    random_seed: int = 20261124

    def scripts(self, count: int, *, with_latency: bool = True) -> list[RunScript]:
        """`count` runs cycling through 0..max_tool_rounds tool rounds; each turn's latency is
        drawn (deterministically) from the latency range, or 0."""
        draw = random.Random(self.random_seed)
        low, high = (self.time_scale * bound for bound in self.model_latency_range_s)
        scripts = []
        for index in range(count):
            tool_rounds = index % (self.max_tool_rounds + 1)
            latencies = tuple(
                round(draw.uniform(low, high), 3) if with_latency else 0.0
                for _turn in range(tool_rounds + 1)
            )
            scripts.append(RunScript(index, tool_rounds, latencies))
        return scripts

    @property
    def runner_poll_interval(self) -> float:
        return self.runner_poll_interval_s * self.time_scale

    def poll_parameters(self) -> dict[str, str]:
        """The template's default poll settings, scaled like everything else."""
        return {
            name: f"{float(parameter_default(name)) * self.time_scale:g}"
            for name in ("PollInitialSeconds", "PollMaxSeconds")
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "runner_poll_interval": self.runner_poll_interval,
            "stack_poll_parameters": self.poll_parameters(),
        }


FULL = Profile(name="full", runs=8, time_scale=1.0, throughput_runs=20, cold_start_repeats=5)
QUICK = Profile(name="quick", runs=2, time_scale=0.1, throughput_runs=3, cold_start_repeats=1)
