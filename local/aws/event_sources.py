"""The template's event sources, delivered as AWS delivers them: asynchronously, on a worker
thread, so the request (or the clock tick) that caused an event never waits for the function.

- `deliver_s3_notifications(stack)`: while active, every object created in moto (put_object,
  presigned POST, copy_object, CompleteMultipartUpload) notifies the matching
  `stack.s3_subscriptions`.
- `local.aws.dynamodb_streams.deliver_table_streams(stack.event_sources)`: while active, every
  write moto commits to a table with a stream reaches the matching `stack.stream_subscriptions`
  (filtered by their FilterCriteria, in order, retried as Lambda retries a stream batch).
- While running, the queues of `stack.queue_subscriptions` are polled as Lambda polls them:
  a batch of visible messages per invocation; a message the function handled is deleted,
  one it reported failed (ReportBatchItemFailures), or every one of a failed invocation, is
  received again once its visibility timeout (which the function may have changed) ends.
- `run_schedules(stack, time_scale=...)`: fires the enabled `rate(...)` schedules on a clock;
  `cron(...)` and `at(...)` schedules fire only on demand.
- `fire_schedule(stack, function)`: fires a function's schedule now and returns its result.
- `stack.event_sources.wait_idle(timeout)`: waits until every queued delivery has run.
- `stack.event_sources.losing(source)`: drops a source's events for a while, as lost ones.

Delivery is at least once, in order, one at a time. A failed invocation is retried as Lambda
retries asynchronous invocations (the function's EventInvokeConfig MaximumRetryAttempts, twice
by default, after a delay: about one and two minutes on AWS, `retry_delays` seconds here), then
logged and recorded (`stack.event_sources.deliveries()`) and never raised into the uploader;
with an OnFailure destination (an SQS queue) its invocation record is sent there, in the shape
Lambda sends.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import queue
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from moto.events.models import EventPattern
from moto.s3 import notifications
from moto.s3.notifications import S3NotificationEvent
from moto.sqs.models import sqs_backends

from local.aws.local_stack import (
    OBJECT_CREATED_EVENTS,
    OBJECT_CREATED_PUT,
    FunctionInvocationError,
)
from local.aws.records import (
    AsyncInvokeConfig,
    Invoker,
    QueueSubscription,
    ScheduleSpec,
    StreamSubscription,
)
from local.aws.resources.events import SCHEDULER_SOURCE

if TYPE_CHECKING:
    from moto.s3.models import FakeBucket, FakeKey
    from mypy_boto3_sqs import SQSClient

    from local.aws.local_stack import LocalStack

logger = logging.getLogger(__name__)

S3_SOURCE = "aws:s3"
DYNAMODB_SOURCE = "aws:dynamodb"
SQS_SOURCE = "aws:sqs"
QUEUE_POLL_SECONDS = 0.05
_HISTORY_LENGTH = 1000
ASYNC_RETRY_DELAYS = (0.5, 1.0)  # seconds; AWS waits about one and two minutes
_STOP = object()
_RATE = re.compile(r"rate\((?P<value>\d+) (?P<unit>minute|hour|day)(?P<plural>s?)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_ON_DEMAND_ONLY = re.compile(r"(cron|at)\(.+\)")


@dataclass(frozen=True)
class Delivery:
    """One event an event source handed to a function, and how the invocation ended."""

    source: str  # the event's source: aws:s3, aws.events or aws.scheduler
    function_logical_id: str
    event: Any
    result: Any = None
    error: dict[str, Any] | None = None  # the runtime's errorType/errorMessage if it failed
    attempts: int = 1
    on_failure: str | None = None  # the destination the failure's invocation record went to


@dataclass(frozen=True)
class _Queued:
    source: str
    function_logical_id: str
    event: Any
    # One asynchronous invocation: its retries keep the request id, as on AWS.
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    stream: StreamSubscription | None = None  # a stream batch: retried as Lambda retries one
    queue: QueueSubscription | None = None  # messages received from a queue
    # The service that invokes, as IAM sees it (None: Lambda itself, which reads streams and
    # queues with the function's role and runs asynchronous events).
    invoker: Invoker | None = None


class EventSources:
    """A stack's asynchronous deliveries: a queue and one worker thread that invokes the
    functions in order. The worker runs while at least one `running()` context is active."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self._lifecycle = threading.Lock()  # serialises starting and stopping the worker
        self._users = 0
        self._worker: threading.Thread | None = None
        self._state = threading.Condition()  # guards everything below
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._accepting = False
        self._pending = 0
        self._losing: dict[str, list[Any]] = {}  # source -> the events it lost meanwhile
        self._history: deque[Delivery] = deque(maxlen=_HISTORY_LENGTH)
        self._poller: threading.Thread | None = None
        self._sqs_client: SQSClient | None = None
        self._queue_urls: dict[str, str] = {}  # by queue ARN
        self._poller_stop = threading.Event()
        # The wait before each retry; a function's MaximumRetryAttempts (Lambda's default: 2)
        # says how many of them it gets.
        self.retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS

    @contextmanager
    def running(self, drain_timeout: float = 10) -> Iterator[EventSources]:
        """Run the worker while the context is active (contexts may overlap); on the last exit,
        deliver what is queued (waiting at most `drain_timeout` seconds) and stop it."""
        self._start()
        try:
            yield self
        finally:
            self._stop(drain_timeout)

    @contextmanager
    def losing(self, source: str) -> Iterator[list[Any]]:
        """While active, the events `source` (e.g. aws:s3) submits are lost, as a delivery AWS
        never makes; yields the list of those events."""
        lost: list[Any] = []
        with self._state:
            self._losing[source] = lost
        try:
            yield lost
        finally:
            with self._state:
                del self._losing[source]

    def submit(
        self,
        source: str,
        function_logical_id: str,
        event: Any,
        *,
        stream: StreamSubscription | None = None,
        invoker: Invoker | None = None,
    ) -> None:
        """Queue an invocation; it runs on the worker thread, after those queued before it."""
        with self._state:
            if not self._accepting:
                raise RuntimeError("the event sources are not running (see EventSources.running)")
            if source in self._losing:
                self._losing[source].append(event)
                return
            self._pending += 1
            queued = _Queued(source, function_logical_id, event, stream=stream, invoker=invoker)
            self._inbox.put(queued)

    def _poll_queues(self, stop: threading.Event) -> None:
        """Receive from each subscribed queue and queue its batches, until `stop`."""
        sqs = self._sqs()
        urls = {sub: self._queue_url(sub) for sub in self._stack.queue_subscriptions}
        while not stop.wait(QUEUE_POLL_SECONDS):
            for subscription, url in urls.items():
                if not _holds_visible_messages(subscription):
                    continue  # no receive: polling an empty queue costs nothing here
                with self._state:
                    if not self._accepting:
                        return
                    # Counted before the receive: wait_idle never sees a message in neither
                    # the queue nor the worker's inbox.
                    self._pending += 1
                    inbox = self._inbox
                try:
                    received = sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=min(subscription.batch_size, 10),
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                except Exception:  # the poller outlives a failed receive, as Lambda's does
                    logger.exception("receiving from %s failed", subscription.queue_name)
                    received = []
                if not received:
                    self._settle_one()
                    continue
                event = {"Records": [sqs_record(message, subscription) for message in received]}
                inbox.put(
                    _Queued(SQS_SOURCE, subscription.function_logical_id, event, queue=subscription)
                )

    def _settle_one(self) -> None:
        with self._state:
            self._pending -= 1
            self._state.notify_all()

    def _sqs(self) -> SQSClient:
        if self._sqs_client is None:
            self._sqs_client = boto3.client("sqs", region_name=self._stack.region)
        return self._sqs_client

    def _queue_url(self, subscription: QueueSubscription) -> str:
        if subscription.queue_arn not in self._queue_urls:
            url = self._sqs().get_queue_url(QueueName=subscription.queue_name)["QueueUrl"]
            self._queue_urls[subscription.queue_arn] = url
        return self._queue_urls[subscription.queue_arn]

    def _queues_hold_visible_messages(self) -> bool:
        return any(map(_holds_visible_messages, self._stack.queue_subscriptions))

    def streams(self, table_name: str) -> bool:
        """Whether a function is subscribed to the table's stream."""
        return any(sub.table_name == table_name for sub in self._stack.stream_subscriptions)

    def table_written(self, records: list[tuple[str, Any]]) -> None:
        """Queue the stream batches of one committed write: (table name, record) pairs."""
        for subscription in self._stack.stream_subscriptions:
            patterns = _loaded(subscription.patterns)
            passed = [
                {**record, "eventSourceARN": subscription.stream_arn}
                for table_name, record in records
                if table_name == subscription.table_name
                and (not patterns or any(pattern.matches_event(record) for pattern in patterns))
            ]
            for start in range(0, len(passed), subscription.batch_size):
                batch = {"Records": passed[start : start + subscription.batch_size]}
                self.submit(
                    DYNAMODB_SOURCE, subscription.function_logical_id, batch, stream=subscription
                )

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait until every queued delivery has run and the subscribed queues hold no message
        to receive now (one waiting out a visibility timeout does not count); TimeoutError if
        some still have not."""
        deadline = time.monotonic() + timeout
        with self._state:
            while not (self._pending == 0 and not self._queues_hold_visible_messages()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self._pending} deliveries still pending after {timeout} s"
                    )
                self._state.wait(min(left, QUEUE_POLL_SECONDS))

    def deliveries(self) -> list[Delivery]:
        """The deliveries that have run (the latest 1000), oldest first."""
        with self._state:
            return list(self._history)

    def _start(self) -> None:
        with self._lifecycle:
            self._users += 1
            if self._users > 1:
                return
            with self._state:
                # A fresh queue per worker: a previous worker that outlived its drain timeout
                # keeps its own queue and stop marker.
                self._inbox = queue.SimpleQueue()
                self._accepting = True
                inbox = self._inbox
            self._worker = threading.Thread(
                target=self._work,
                args=(inbox,),
                name=f"event-sources-{self._stack.stack_name}",
                daemon=True,
            )
            self._worker.start()
            if self._stack.queue_subscriptions:
                self._sqs()  # built here: the poller and the worker share it
                self._poller_stop = threading.Event()
                self._poller = threading.Thread(
                    target=self._poll_queues,
                    args=(self._poller_stop,),
                    name=f"queue-poller-{self._stack.stack_name}",
                    daemon=True,
                )
                self._poller.start()

    def _stop(self, drain_timeout: float) -> None:
        with self._lifecycle:
            self._users -= 1
            if self._users > 0 or self._worker is None:
                return
            try:
                self.wait_idle(drain_timeout)
            except TimeoutError as error:
                logger.warning("stopping the event sources with deliveries queued: %s", error)
            with self._state:
                self._accepting = False
            if self._poller is not None:
                self._poller_stop.set()
                self._poller.join(drain_timeout)
                self._poller = None
            try:
                self.wait_idle(drain_timeout)
            except TimeoutError as error:
                logger.warning("stopping the event sources with deliveries queued: %s", error)
            with self._state:
                self._inbox.put(_STOP)
            self._worker.join(drain_timeout)
            self._worker = None

    def _work(self, inbox: queue.SimpleQueue[Any]) -> None:
        while (item := inbox.get()) is not _STOP:
            try:
                delivery = self._deliver(item)
            except Exception as error:  # the worker outlives a failure around an invocation
                logger.exception("%s delivery to %s failed", item.source, item.function_logical_id)
                delivery = _failed(item, error)
            with self._state:
                self._history.append(delivery)
                self._pending -= 1
                self._state.notify_all()

    def _deliver(self, item: _Queued) -> Delivery:
        if item.stream is not None:
            return self._deliver_stream_batch(item, item.stream)
        if item.queue is not None:
            return self._deliver_messages(item, item.queue)
        return self._deliver_asynchronously(item)

    def _deliver_asynchronously(self, item: _Queued) -> Delivery:
        delivery = self._invoke(item)
        if delivery.error is None:
            return delivery
        config = self._async_invoke_config(item)
        for delay in self.retry_delays[: config.maximum_retry_attempts]:
            time.sleep(delay)
            delivery = replace(self._invoke(item), attempts=delivery.attempts + 1)
            if delivery.error is None:
                return delivery
        if config.on_failure is None:
            return delivery
        record = invocation_record(self._stack, item, delivery)
        try:
            self._stack.send_to_queue(config.on_failure, record)
        except Exception:  # the worker outlives a destination that refuses the record
            logger.exception(
                "the failure of %s not sent to %s", item.function_logical_id, config.on_failure
            )
            return delivery
        return replace(delivery, on_failure=config.on_failure)

    def _deliver_stream_batch(self, item: _Queued, stream: StreamSubscription) -> Delivery:
        """Invoke until the batch succeeds: a failed invocation retries the batch, a reported
        item failure the batch from that record on; after MaximumRetryAttempts, a record of
        what failed goes to the OnFailure destination and the stream moves on."""
        attempts = 0
        while True:
            delivery = self._invoke(item)
            attempts += 1
            failed_from = _first_failed_record(delivery, item.event["Records"], stream)
            if failed_from is None:
                return replace(delivery, attempts=attempts)
            item = replace(item, event={"Records": item.event["Records"][failed_from:]})
            if 0 <= stream.maximum_retry_attempts < attempts:
                break
            time.sleep(self.retry_delays[min(attempts, len(self.retry_delays)) - 1])
        delivery = replace(delivery, attempts=attempts)
        if stream.on_failure is None:
            return delivery
        try:
            self._stack.send_to_queue(
                stream.on_failure, stream_failure_record(self._stack, item, stream, attempts)
            )
        except Exception:  # the worker outlives a destination that refuses the record
            logger.exception("the failed batch not sent to %s", stream.on_failure)
            return delivery
        return replace(delivery, on_failure=stream.on_failure)

    def _deliver_messages(self, item: _Queued, queue: QueueSubscription) -> Delivery:
        """Invoke once; delete the messages it handled (none if it failed)."""
        delivery = self._invoke(item)
        records = item.event["Records"]
        if delivery.error is not None:
            return delivery
        failed = set()
        if queue.partial_batch_responses and isinstance(delivery.result, dict):
            failed = {
                failure.get("itemIdentifier")
                for failure in delivery.result.get("batchItemFailures") or []
            }
        handled = [record for record in records if record["messageId"] not in failed]
        if handled:
            self._sqs().delete_message_batch(
                QueueUrl=self._queue_url(queue),
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                    for index, record in enumerate(handled)
                ],
            )
        return delivery

    def _async_invoke_config(self, item: _Queued) -> AsyncInvokeConfig:
        try:
            return self._stack.async_invoke_config(item.function_logical_id)
        except Exception:  # the worker outlives it, with Lambda's defaults
            logger.exception("no EventInvokeConfig read for %s", item.function_logical_id)
            return AsyncInvokeConfig()

    def _invoke(self, item: _Queued) -> Delivery:
        try:
            result = self._stack.invoke(item.function_logical_id, item.event, invoker=item.invoker)
        except FunctionInvocationError as error:
            logger.error(
                "%s event to %s failed: %s: %s",
                item.source,
                item.function_logical_id,
                error.payload.get("errorType"),
                error.payload.get("errorMessage"),
            )
            return Delivery(item.source, item.function_logical_id, item.event, error=error.payload)
        except Exception as error:  # the worker outlives any failure, as S3 and EventBridge do
            logger.exception("%s event to %s not delivered", item.source, item.function_logical_id)
            return _failed(item, error)
        return Delivery(item.source, item.function_logical_id, item.event, result=result)

    def object_created(self, bucket: FakeBucket, key: FakeKey, event_name: str) -> None:
        """Queue the notifications S3 sends for an object moto just created."""
        # Snapshot the object now, as S3's record describes the version that was written, not
        # whatever the key holds when the function runs.
        head: dict[str, Any] = {
            "ContentLength": key.size,
            "ETag": key.etag,
            "LastModified": key.last_modified,
            "ResponseMetadata": {"RequestId": secrets.token_hex(8).upper()},
        }
        if bucket.is_versioned:
            head["VersionId"] = key.version_id
        account = bucket.account_id
        s3 = Invoker("s3.amazonaws.com", source_arn=bucket.arn, source_account=account)
        for function_logical_id, event in self._stack.s3_notifications(
            bucket.name, key.name, event_name, head
        ):
            self.submit(S3_SOURCE, function_logical_id, event, invoker=s3)


def _failed(item: _Queued, error: Exception) -> Delivery:
    payload = {"errorType": type(error).__name__, "errorMessage": str(error)}
    return Delivery(item.source, item.function_logical_id, item.event, error=payload)


@functools.cache
def _loaded(patterns: tuple[str, ...]) -> list[EventPattern]:
    return [EventPattern.load(pattern) for pattern in patterns]


def _holds_visible_messages(subscription: QueueSubscription) -> bool:
    """Whether a receive would get a message now: read from moto's queue directly, as an
    SQS request per poll would cost the tests' CPU more than the functions they run."""
    _, _, _, region, account, name = subscription.queue_arn.split(":")
    queue = sqs_backends[account][region].queues.get(name)
    return queue is not None and bool(queue.messages)


def sqs_record(message: Mapping[str, Any], queue: QueueSubscription) -> dict[str, Any]:
    """One received message as Lambda hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": SQS_SOURCE,
        "eventSourceARN": queue.queue_arn,
        "awsRegion": queue.queue_arn.split(":")[3],
    }


def _first_failed_record(
    delivery: Delivery, records: list[Any], stream: StreamSubscription
) -> int | None:
    """Where Lambda retries a stream batch from: None if it succeeded, 0 if the invocation
    failed (or reported a failure it cannot place), else the first record reported."""
    if delivery.error is not None:
        return 0
    if not stream.partial_batch_responses or not isinstance(delivery.result, dict):
        return None
    reported = {
        failure.get("itemIdentifier") for failure in delivery.result.get("batchItemFailures") or []
    }
    if not reported:
        return None
    numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
    return min((numbers.index(number) for number in reported if number in numbers), default=0)


def stream_failure_record(
    stack: LocalStack, item: _Queued, stream: StreamSubscription, attempts: int
) -> Any:
    """What Lambda sends a stream mapping's OnFailure destination: where the batch it gave up
    on lies in the stream (not the records themselves)."""
    records = item.event["Records"]
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": item.request_id,
            "functionArn": stack.function(stream.function_logical_id).arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "DDBStreamBatchInfo": {
            "shardId": "shardId-local",
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "batchSize": len(records),
            "streamArn": stream.stream_arn,
        },
    }


def invocation_record(stack: LocalStack, item: _Queued, delivery: Delivery) -> dict[str, Any]:
    """What Lambda sends an OnFailure destination once an asynchronous invocation has failed
    its last retry (the SQS message body)."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": item.request_id,
            "functionArn": f"{stack.function(item.function_logical_id).arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": delivery.attempts,
        },
        "requestPayload": item.event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": delivery.error,
    }


class _ObjectCreatedHook:
    """moto's S3 backend calls `moto.s3.notifications.send_event` for every object event, from
    the request that caused it (put_object with request_method PUT or POST, copy_object,
    complete_multipart_upload). While any stack listens, that function is replaced by this
    hook, which calls moto's and then queues the listeners' notifications."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[EventSources] = []
        self._moto_send_event: Any = None

    def add(self, sources: EventSources) -> None:
        with self._lock:
            if not self._listeners:
                self._moto_send_event = notifications.send_event
                notifications.send_event = self
            self._listeners.append(sources)

    def remove(self, sources: EventSources) -> None:
        with self._lock:
            self._listeners.remove(sources)
            if not self._listeners:
                notifications.send_event = self._moto_send_event
                self._moto_send_event = None

    def __call__(self, account_id: str, event_name: Any, bucket: FakeBucket, key: FakeKey) -> None:
        with self._lock:
            moto_send_event = self._moto_send_event
            # A stack listening twice (nested contexts) is still notified once.
            listeners = list(dict.fromkeys(self._listeners))
        if moto_send_event is not None:  # notification configurations set through the S3 API
            moto_send_event(account_id, event_name, bucket, key)
        name = S3NotificationEvent(event_name).value
        # moto's complete_multipart_upload stores the object through put_object, which sends
        # a Put as well; S3 sends only CompleteMultipartUpload.
        if name not in OBJECT_CREATED_EVENTS or (
            name == OBJECT_CREATED_PUT and key.multipart is not None
        ):
            return
        for sources in listeners:
            try:
                sources.object_created(bucket, key, name)
            except Exception:  # S3 notifies asynchronously: the write has succeeded regardless
                logger.exception("S3 notification of %s/%s not queued", bucket.name, key.name)


_OBJECT_CREATED_HOOK = _ObjectCreatedHook()


@contextmanager
def deliver_s3_notifications(
    stack: LocalStack, *, drain_timeout: float = 10
) -> Iterator[EventSources]:
    """While active, objects created in moto's S3 (in this process, by any client) notify the
    stack's subscribed functions through `stack.event_sources`. On exit, queued notifications
    are delivered (at most `drain_timeout` seconds) and moto's S3 is restored."""
    with stack.event_sources.running(drain_timeout) as sources:
        _OBJECT_CREATED_HOOK.add(sources)
        try:
            yield sources
        finally:
            _OBJECT_CREATED_HOOK.remove(sources)


class ScheduleNotFound(LookupError):
    """The function does not exist or has no such Schedule/ScheduleV2 event."""


class AmbiguousSchedule(ValueError):
    """The function has several schedules and none was named."""


def rate_seconds(expression: str) -> int | None:
    """The period of a `rate(...)` expression in seconds; None for `cron(...)` and `at(...)`,
    which fire only on demand locally. ValueError for an expression AWS would refuse."""
    rate = _RATE.fullmatch(expression)
    if rate:
        value = int(rate["value"])
        # AWS: a positive value, the singular unit for 1 and the plural otherwise.
        if value < 1 or (value == 1) == bool(rate["plural"]):
            raise ValueError(f"{expression!r}: use e.g. rate(1 minute) or rate(5 minutes)")
        return value * _UNIT_SECONDS[rate["unit"]]
    if _ON_DEMAND_ONLY.fullmatch(expression):
        return None
    raise ValueError(f"{expression!r} is not a rate(...), cron(...) or at(...) expression")


def find_schedule(
    stack: LocalStack, function_logical_id: str, event_name: str | None = None
) -> ScheduleSpec:
    """The function's (logical id or name) schedule; `event_name` picks one of several."""
    try:
        function = stack.function(function_logical_id)
    except KeyError as error:
        raise ScheduleNotFound(error.args[0]) from None
    schedules = [
        spec for spec in stack.schedules if spec.function_logical_id == function.logical_id
    ]
    names = [spec.event_name for spec in schedules]
    if event_name is not None:
        schedules = [spec for spec in schedules if spec.event_name == event_name]
    if len(schedules) == 1:
        return schedules[0]
    if not schedules:
        wanted = f"schedule {event_name!r}" if event_name else "Schedule or ScheduleV2 event"
        raise ScheduleNotFound(f"{function.logical_id} has no {wanted} (it has {names})")
    raise AmbiguousSchedule(f"{function.logical_id} has several schedules, name one of {names}")


def schedule_invoker(spec: ScheduleSpec) -> Invoker:
    """EventBridge invokes a rule's target with the function's permission for the rule; a
    Scheduler schedule with its own role."""
    if spec.source == SCHEDULER_SOURCE:
        return Invoker("scheduler.amazonaws.com", role_arn=spec.role_arn)
    return Invoker("events.amazonaws.com", source_arn=spec.resource_arn)


def schedule_event(stack: LocalStack, spec: ScheduleSpec, *, detail_override: Any = None) -> Any:
    """What the function receives when the schedule fires: the schedule's Input when it has one
    (`detail_override` replaces it), otherwise the scheduled-event envelope, with
    `detail_override` as its `detail` when given."""
    if spec.input is not None:
        return json.loads(spec.input) if detail_override is None else detail_override
    # EventBridge Scheduler's default event carries `detail` as the string "{}".
    detail: str | dict[str, Any] = "{}" if spec.source == SCHEDULER_SOURCE else {}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": spec.source,
        "account": spec.resource_arn.split(":")[4],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": stack.region,
        "resources": [spec.resource_arn],
        "detail": detail if detail_override is None else detail_override,
    }


def fire_schedule(
    stack: LocalStack,
    function_logical_id: str,
    *,
    event_name: str | None = None,
    detail_override: Any = None,
) -> Any:
    """Fire the function's schedule now (even a disabled or cron one: this is a manual
    trigger), synchronously, and return the function's result; FunctionInvocationError if it
    failed. `detail_override` replaces the schedule's Input, or the event's detail without one.
    """
    spec = find_schedule(stack, function_logical_id, event_name)
    event = schedule_event(stack, spec, detail_override=detail_override)
    return stack.invoke(spec.function_logical_id, event, invoker=schedule_invoker(spec))


@contextmanager
def run_schedules(
    stack: LocalStack, *, time_scale: float = 1.0, drain_timeout: float = 10
) -> Iterator[EventSources]:
    """While active, fire every enabled `rate(...)` schedule each period through
    `stack.event_sources`, the first one period after entry. `time_scale` shortens the
    periods (600: `rate(1 minute)` fires every 0.1 s); events carry the real time. `cron(...)`
    and `at(...)` schedules are left to `fire_schedule`."""
    if time_scale <= 0:
        raise ValueError(f"time_scale must be positive, not {time_scale}")
    timed: list[tuple[ScheduleSpec, float]] = []
    for spec in stack.schedules:
        period = rate_seconds(spec.expression)  # refuses a bad expression even if disabled
        if not spec.enabled:
            continue
        if period is None:
            logger.info(
                "%s.%s fires only on demand locally", spec.function_logical_id, spec.event_name
            )
            continue
        schedule_event(stack, spec)  # refuses a bad Input now rather than on the clock thread
        timed.append((spec, period / time_scale))
    stop = threading.Event()
    with stack.event_sources.running(drain_timeout) as sources:
        clock = threading.Thread(
            target=_tick, args=(stack, timed, stop), name="schedules", daemon=True
        )
        clock.start()
        try:
            yield sources
        finally:
            stop.set()
            clock.join(drain_timeout)


def _tick(
    stack: LocalStack, timed: list[tuple[ScheduleSpec, float]], stop: threading.Event
) -> None:
    due = [time.monotonic() + interval for _, interval in timed]
    while timed:
        index = min(range(len(timed)), key=due.__getitem__)
        if stop.wait(max(0.0, due[index] - time.monotonic())):
            return
        spec, interval = timed[index]
        stack.event_sources.submit(
            spec.source,
            spec.function_logical_id,
            schedule_event(stack, spec),
            invoker=schedule_invoker(spec),
        )
        # Like EventBridge, skip the ticks missed while behind rather than catching up.
        behind = time.monotonic() - due[index]
        due[index] += interval * max(1, math.ceil(behind / interval))
