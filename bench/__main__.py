"""`make bench`: the runner loop against Threadline's orchestration on the same scripted workload,
the modelled AWS cost per 1,000 runs, cold starts, and the local stack's throughput.

    python -m bench            the realistic profile (about 4 minutes on 2 cores)
    python -m bench --quick    tiny N, durations scaled by 0.1 (the smoke test's mode)

Prints tables and writes bench/results/latest.json (or --output); what the handlers and the
local stack print goes to .local/bench.log. Exits 1 when a run did not go as scripted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from bench.cold_start import measure_cold_starts
from bench.measurements import ModeResult
from bench.orchestration import measure_threadline
from bench.report import print_report, say
from bench.results import build_results
from bench.runner_loop import measure_runner_loop
from bench.throughput import measure_throughput
from bench.workload import FULL, QUICK
from local.stack_session import REPO

RESULTS = REPO / "bench" / "results" / "latest.json"
LOG_FILE = REPO / ".local" / "bench.log"
# Threadline modes: label -> template parameters on top of the profile's poll settings.
THREADLINE_MODES: dict[str, dict[str, str]] = {
    # The default: the Express tier, then (webhooks configured) Standard woken by webhooks.
    "threadline": {},
    "threadline_no_webhooks": {"RunWaitMode": "poll"},  # the Express tier, then Standard polls
    "threadline_standard_poll": {"ExpressTierSeconds": "0", "RunWaitMode": "poll"},
    "threadline_standard_push": {"ExpressTierSeconds": "0", "RunWaitMode": "push"},
}


# The default design with a client watching every run (answers streamed): priced, not modelled
# by run length.
STREAMED = "threadline_streamed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N, durations scaled by 0.1")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    started = time.monotonic()
    LOG_FILE.parent.mkdir(exist_ok=True)
    with (
        LOG_FILE.open("w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        say(f"Cold start: importing {profile.cold_start_repeats}x per function ...")
        cold_starts = measure_cold_starts(
            profile.cold_start_repeats, warm_up=profile.cold_start_warm_up
        )
        scripts = profile.scripts()
        say(f"Runner loop: {len(scripts)} concurrent runs ...")
        modes: dict[str, ModeResult] = {"runner_loop": measure_runner_loop(profile, scripts)}
        designs = {
            label: parameters
            for label, parameters in THREADLINE_MODES.items()
            if profile.designs is None or label in profile.designs
        }
        for label, parameters in designs.items():
            say(f"{label}: {len(scripts)} concurrent runs ...")
            modes[label] = measure_threadline(profile, scripts, label=label, parameters=parameters)
        say(f"{STREAMED}: {len(scripts)} concurrent runs, each watched over the WebSocket API ...")
        modes[STREAMED] = measure_threadline(profile, scripts, label=STREAMED, watched=True)
        say(f"Throughput: {profile.throughput_runs} concurrent runs ...")
        throughput = measure_throughput(profile)
    document = build_results(profile, scripts, modes, designs, cold_starts, throughput)
    document["elapsed_s"] = round(time.monotonic() - started, 1)
    print_report(document, list(modes))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    say(f"\nWrote {args.output} in {document['elapsed_s']:g} s (handler logs: {LOG_FILE})")
    return 1 if document["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
