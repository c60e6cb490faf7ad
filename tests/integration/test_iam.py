"""IAM on the local stack is AWS's: take one grant the product needs out of the template and
the call it covers fails as it would deployed - AccessDenied, naming the function, the
action and the resource - and the product answers as it would there (a failed run with the
reason, a download URL S3 refuses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local.openai_server import Step
from local.stack_session import TEMPLATE, LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from threadline.ids import new_id

GENERATED = b"\x89PNG\r\n\x1a\nchart"


def template_without(tmp_path: Path, after: str, grant: str) -> Path:
    """template.yaml with `grant` taken out of the first place it follows `after`."""
    text = TEMPLATE.read_text()
    start = text.index(after)
    where = text.index(grant, start)
    broken = tmp_path / "template.yaml"
    broken.write_text(text[:where] + text[where + len(grant) :])
    return broken


@pytest.fixture
def product_without(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalThreadline]:
    after, grant = request.param
    with local_threadline(template=template_without(tmp_path, after, grant)) as session:
        yield session


@pytest.mark.parametrize(
    "product_without",
    [("CodeUri: functions/check_run/", "        - !Ref TableItemsPolicy\n")],
    indirect=True,
)
def test_a_step_whose_role_lacks_a_grant_fails_the_run_naming_what_was_denied(
    product_without: LocalThreadline,
) -> None:
    """CheckRun records the answer on the run's record: without its table grant, the run
    fails with the reason AWS gives."""
    alice = Client(product_without, new_id("alice"))
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Forty-two."))
    run = alice.finished_run(thread_id, "What is the answer?")
    assert run["status"] == "failed"
    reason = run["reason"]
    assert "AccessDenied" in reason
    assert "CheckRunFunction" in reason  # the role's session: the function
    assert "not authorized to perform: dynamodb:UpdateItem" in reason
    table = product_without.stack.resources["Table"]
    assert f":table/{table}" in reason
    denied = [d for d in product_without.iam.decisions if d.result != "Allowed"]  # type: ignore[union-attr]
    assert {(d.principal, d.action) for d in denied} == {
        ("CheckRunFunction", "dynamodb:UpdateItem")
    }


@pytest.mark.parametrize(
    "product_without",
    [
        (
            "CodeUri: functions/api/",
            "            - Effect: Allow\n"
            "              Action: s3:GetObject\n"
            '              Resource: !Sub "${FilesBucket.Arn}/outputs/*"\n',
        )
    ],
    indirect=True,
)
def test_a_download_url_signed_by_a_role_that_may_not_read_it_is_refused_by_s3(
    product_without: LocalThreadline,
) -> None:
    """The API signs the generated files' download URLs with its role: S3 answers a URL
    signed by a role denied `outputs/*` with 403, as deployed."""
    alice = Client(product_without, new_id("alice"))
    thread_id = alice.thread()
    alice.script(thread_id, Step.image("Here is the chart.", GENERATED, "chart.png"))
    run = alice.finished_run(thread_id, "Draw it")
    assert run["status"] == "completed", run
    (link,) = run["files"]
    answer = requests.get(link["url"], timeout=10)
    assert answer.status_code == 403
    assert b"AccessDenied" in answer.content
