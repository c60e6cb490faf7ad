"""The run lifecycle's parts: the tools a run may call, the state tasks' steps, push waits,
and the API's starter and run service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.runtime.parts import Parts

PARAMETER_MAX_AGE_SECONDS = 3600  # a machine's ARN changes only when a deploy replaces it

if TYPE_CHECKING:
    from threadline.assistant_config import AssistantConfig
    from threadline.runs.approvals import RunApprovals
    from threadline.runs.lost import LostRuns
    from threadline.runs.service import RunService
    from threadline.runs.starting import RunLauncher, RunStarter
    from threadline.runs.steps import RunSteps
    from threadline.runs.tiers import RunHandOff
    from threadline.runs.webhook_waits import WebhookWaits, WebhookWaitStore
    from threadline.threads.run_queue import RunQueue
    from threadline.tools import ToolRegistry


class RunParts(Parts):
    def tools_for(self, assistant: AssistantConfig) -> ToolRegistry:
        """The tools an assistant's file names, Lambda tools invoked with this root's client."""
        from threadline.assistant_config import catalogue

        return catalogue().tools_for(assistant, self.lambda_client, self.settings().tool_functions)

    def run_steps(self) -> RunSteps:
        def build() -> RunSteps:
            from threadline.runs.steps import RunSteps

            return RunSteps(
                settings=self.settings(),
                backend=self.backend,
                tools_for=self.tools_for,
                threads=self.thread_store,
                lock=self.run_lock,
                runs=self.run_store,
                usage=self.usage_ledger,
                files=self.file_store,
                s3=self.s3_client,
                waits=self.webhook_wait_store,
                queue=self.run_queue,
                launcher=self.run_launcher,
                approvals=self.run_approvals,
                webhooks_configured=self.webhooks_configured,
            )

        return self._part("run_steps", build)

    def run_approvals(self) -> RunApprovals:
        def build() -> RunApprovals:
            from threadline.runs.approvals import ApprovalStore, RunApprovals

            settings = self.settings()
            return RunApprovals(
                store=ApprovalStore(self.table()),
                runs=self.run_store(),
                threads=self.thread_store(),
                lock=self.run_lock(),
                stepfunctions=self.stepfunctions,
                approval_timeout_seconds=settings.approval_timeout_seconds,
                run_timeout_seconds=settings.run_timeout_seconds,
            )

        return self._part("run_approvals", build)

    def webhook_wait_store(self) -> WebhookWaitStore:
        def build() -> WebhookWaitStore:
            from threadline.runs.webhook_waits import WebhookWaitStore

            return WebhookWaitStore(self.table())

        return self._part("webhook_wait_store", build)

    def webhook_waits(self) -> WebhookWaits:
        def build() -> WebhookWaits:
            from threadline.runs.webhook_waits import WebhookWaits

            return WebhookWaits(
                store=self.webhook_wait_store(),
                steps=self.run_steps(),
                stepfunctions=self.stepfunctions(),
            )

        return self._part("webhook_waits", build)

    def run_hand_off(self) -> RunHandOff:
        def build() -> RunHandOff:
            from threadline.runs.tiers import RunHandOff

            return RunHandOff(
                settings=self.settings(),
                runs=self.run_store(),
                stepfunctions=self.stepfunctions(),
                standard_state_machine_arn=self.hand_off_settings().state_machine_arn,
            )

        return self._part("run_hand_off", build)

    def lost_runs(self) -> LostRuns:
        def build() -> LostRuns:
            from threadline.runs.lost import LostRuns

            return LostRuns(
                threads=self.thread_store(),
                runs=self.run_store(),
                lock=self.run_lock(),
                steps=self.run_steps(),
            )

        return self._part("lost_runs", build)

    def run_queue(self) -> RunQueue:
        def build() -> RunQueue:
            from threadline.threads.run_lock import run_lock_lease
            from threadline.threads.run_queue import RunQueue

            return RunQueue(
                self.table(),
                threads=self.thread_store(),
                runs=self.run_store(),
                lock=self.run_lock(),
                lease=run_lock_lease(self.settings().run_timeout_seconds),
            )

        return self._part("run_queue", build)

    def run_launcher(self) -> RunLauncher:
        def build() -> RunLauncher:
            from threadline.runs.starting import RunLauncher

            standard, express = self._state_machine_arns()
            return RunLauncher(
                runs=self.run_store(),
                stepfunctions=self.stepfunctions(),
                state_machine_arn=standard,
                express_state_machine_arn=express if self.settings().express_tier_seconds else None,
            )

        return self._part("run_launcher", build)

    def _state_machine_arns(self) -> tuple[str, str | None]:
        """The Standard and Express run state machines' ARNs: from the environment, or (in
        FinishRun, which the machines call) from the SSM parameters that hold them."""
        settings = self.settings()
        if settings.state_machine_arn_parameter is None:
            launch = self.launch_settings()
            return launch.state_machine_arn, launch.express_state_machine_arn
        from aws_lambda_powertools.utilities import parameters

        def read(name: str) -> str:
            return str(parameters.get_parameter(name, max_age=PARAMETER_MAX_AGE_SECONDS))

        express = settings.express_state_machine_arn_parameter
        return read(settings.state_machine_arn_parameter), read(express) if express else None

    def run_starter(self) -> RunStarter:
        def build() -> RunStarter:
            from threadline.runs.starting import RunStarter

            settings = self.api_settings()
            return RunStarter(
                threads=self.thread_store(),
                lock=self.run_lock(),
                runs=self.run_store(),
                queue=self.run_queue(),
                launcher=self.run_launcher(),
                run_timeout_seconds=settings.run_timeout_seconds,
                usage=self.usage_ledger(),
                daily_token_budget=settings.daily_token_budget,
            )

        return self._part("run_starter", build)

    def run_service(self) -> RunService:
        def build() -> RunService:
            from threadline.runs.service import RunService

            settings = self.api_settings()
            return RunService(
                threads=self.thread_store(),
                runs=self.run_store(),
                starter=self.run_starter,
                queue=self.run_queue,
                backend=self.backend,
                s3=self.s3_client,
                bucket=settings.bucket_name,
                max_message_chars=settings.max_message_chars,
                idempotency=self.idempotency,
                callback_targets=self.callback_targets,
                approvals=self.run_approvals,
            )

        return self._part("run_service", build)
