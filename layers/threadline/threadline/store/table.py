"""The single DynamoDB table: item shapes, keys and access patterns.

Every item has `PK` and `SK`; `expires_at` (epoch seconds) is the table's TTL attribute.

| item            | PK                 | SK                 | notes                            |
|-----------------|--------------------|--------------------|----------------------------------|
| thread          | USER#{user_id}     | THREAD#{thread_id} | GSI1: ACTIVITY / {last_activity} |
|                 |                    |                    | GSI2 while a run holds it:       |
|                 |                    |                    | LOCKED / {lock_expires_at}       |
| purpose pointer | USER#{user_id}     | PURPOSE#{purpose}  | the thread to reuse for purpose  |
| run             | THREAD#{thread_id} | RUN#{run_id}       | run ids sort by creation time    |
| file (upload)   | THREAD#{thread_id} | FILE#{upload_id}   | pending -> ingested/rejected/... |
|                 |                    |                    | GSI1 while pending:              |
|                 |                    |                    | PENDING_UPLOADS / {created_at}   |
| usage (per day) | USER#{user_id}     | USAGE#{yyyy-mm-dd} | atomic counters                  |
| counted object  | THREAD#{thread_id} | REMOTE#{remote_id} | its tokens are in the usage      |
| webhook wait    | RESPONSE#{resp_id} | WAIT               | push mode: task token and event  |
| idempotency     | idempotency#{fn}   | {step}#{hash}      | written by Powertools            |
| job lease       | JOB#{job}          | LEASE              | one scheduled run at a time      |

Access patterns:
- get-or-create a user's thread for a purpose: GetItem pointer, GetItem thread, then a
  transaction that puts the new thread and moves the pointer only if it still points where
  it did (two racing callers: one wins, the loser deletes the remote thread it made).
- a user's threads, newest id first: Query PK=USER#u, SK begins_with THREAD#.
- ownership: a thread is only ever read under its owner's PK, so another user's id is simply
  not found.
- one active run per thread: the thread item's `active_run_id` is set with a condition
  (absent, or the same run) and removed by finish; a run whose execution was lost keeps it
  until FinishLostRuns finishes the run once its lease `lock_expires_at` has passed.
- a thread's runs / files: Query PK=THREAD#t, SK begins_with RUN# / FILE#; cleanup deletes
  them the same way (query, then batch delete).
- an upload is ingested once: its file record leaves `pending` with a condition on the
  status, so a duplicate S3 event finds it settled and does nothing.
- the thread's vector store: set on the thread item only if it has none (first one wins).
- deleting a stale thread: a conditional update claims it (`purging_since`, only if still
  idle and not locked by a live run); `get` and the run lock then treat it as gone.
- push mode: the waiting task's token and OpenAI's event meet on RESPONSE#{id}; whichever
  arrives second claims the item (conditional update) and resumes the execution, once.
- per-user usage today / last 30 days: GetItem / Query PK=USER#u, SK between USAGE#d1..d2;
  FinishRun adds the run to today's count in the transaction that records its outcome.
- every token counted once: the tokens of each remote response (or Assistants run) are added
  in a transaction with the conditional put of its REMOTE# item, by whoever sees it settled
  first (FinishRun, or the webhook for a response whose create reply was lost); cleanup
  deletes the remote objects these items name.
- stale threads for cleanup: Query GSI1 (`ByActivity`) GSI1PK=ACTIVITY#{shard}, GSI1SK <
  cutoff, oldest first in each shard; no scan. Only thread items and pending uploads carry
  GSI1 keys (a sparse index).
- runs whose execution was lost: Query GSI2 (`ByLockExpiry`) GSI2PK=LOCKED#{shard}, GSI2SK <
  now, in each shard; the lock sets the keys and its release removes them (a sparse,
  keys-only index).
- uploads no ingest settled, for the sweep: Query GSI1 GSI1PK=PENDING_UPLOADS#{shard},
  GSI1SK < cutoff, in each shard; settling an upload removes its GSI1 keys.

An index partition takes about 1,000 writes a second, and every run writes a thread's
activity and lock keys: each of these partition keys is spread over SHARDS shards, by the
thread's (or upload's) id, and the sweeps that read them query every shard.
"""

from __future__ import annotations

import zlib

ACTIVITY_INDEX = "ByActivity"
ACTIVITY_PARTITION = "ACTIVITY"
LOCK_EXPIRY_INDEX = "ByLockExpiry"
LOCKED_PARTITION = "LOCKED"
PENDING_UPLOADS_PARTITION = "PENDING_UPLOADS"
SHARDS = 16


def sharded(partition: str, item_id: str) -> str:
    """The index partition of one item (a thread, an upload): the same for its every write."""
    return f"{partition}#{zlib.crc32(item_id.encode()) % SHARDS}"


def shards(partition: str) -> list[str]:
    """Every index partition a sweep queries."""
    return [f"{partition}#{shard}" for shard in range(SHARDS)]


def user_key(user_id: str) -> str:
    return f"USER#{user_id}"


def thread_sort_key(thread_id: str) -> str:
    return f"THREAD#{thread_id}"


def thread_key(thread_id: str) -> str:
    return f"THREAD#{thread_id}"


def purpose_sort_key(purpose: str) -> str:
    return f"PURPOSE#{purpose}"


def run_sort_key(run_id: str) -> str:
    return f"RUN#{run_id}"


def file_sort_key(upload_id: str) -> str:
    return f"FILE#{upload_id}"


def remote_sort_key(remote_id: str) -> str:
    return f"REMOTE#{remote_id}"


def usage_sort_key(day: str) -> str:
    return f"USAGE#{day}"
