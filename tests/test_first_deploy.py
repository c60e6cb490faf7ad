"""What a first `sam deploy` on a fresh account needs, and what its first runs meet.

Each test is a point the local stack cannot show by running: an account-wide setting, a
rollback, a partition, a grant wider than the code needs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import REPO, template
from tests.deployed import deploy_resolver

RESOURCES: dict[str, Any] = template()["Resources"]
FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Serverless::Function"
}


def test_the_websocket_stage_is_created_after_the_accounts_logging_role() -> None:
    """A WebSocket stage with access logs is refused until the account names the role API
    Gateway writes logs with; a fresh account names none."""
    stage = RESOURCES["StreamStage"]
    assert "AccessLogSettings" in stage["Properties"]
    assert "ApiGatewayAccount" in stage["DependsOn"]
    account = RESOURCES["ApiGatewayAccount"]["Properties"]["CloudWatchRoleArn"]
    made = deploy_resolver()
    assert made.condition("CreatesApiGatewayCloudWatchRole")
    assert made.resolve(account) == "arn:aws:resolved:arn"
    role = RESOURCES["ApiGatewayCloudWatchRole"]
    assert role["Properties"]["ManagedPolicyArns"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs"
        }
    ]
    # The setting outlives the stack, so the role does too.
    assert role["DeletionPolicy"] == "Retain"
    given = "arn:aws:iam::123456789012:role/apigateway-logs"
    reused = deploy_resolver({"ApiGatewayCloudWatchRoleArn": given})
    assert not reused.condition("CreatesApiGatewayCloudWatchRole")
    assert reused.resolve(account) == given


def test_a_retry_after_a_failed_first_deploy_can_make_the_named_resources_again() -> None:
    """`Retain` keeps a named bucket when the first create rolls back, and the next deploy
    finds the name taken; what holds users' data is kept only once it was made."""
    for name, resource in RESOURCES.items():
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"):
            expected = "Retain" if name == "ApiGatewayCloudWatchRole" else "RetainExceptOnCreate"
            assert resource["DeletionPolicy"] == expected, name
    for stateful in ("Table", "FilesBucket", "AccessLogsBucket", "UserPool"):
        assert RESOURCES[stateful]["DeletionPolicy"] == "RetainExceptOnCreate", stateful


def _authorizers(parameters: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The HTTP API's JWT configuration and the WebSocket authorizer's environment."""
    resolver = deploy_resolver(parameters)
    http = RESOURCES["HttpApi"]["Properties"]["Auth"]["Authorizers"]["Jwt"]["JwtConfiguration"]
    stream = FUNCTIONS["StreamAuthorizerFunction"]["Environment"]["Variables"]
    return resolver.resolve(http), resolver.resolve(stream)


def test_a_deploy_with_no_issuer_trusts_its_own_user_pool() -> None:
    """An example issuer as the default made every request 401 after a plain deploy."""
    assert template()["Parameters"]["JwtIssuer"]["Default"] == ""
    http, stream = _authorizers({})
    issuer = "https://arn:aws:resolved:providerurl"  # the pool's ProviderURL, with its scheme
    assert http == {"issuer": issuer, "audience": ["UserPoolClient-id"]}
    assert (stream["JWT_ISSUER"], stream["JWT_AUDIENCE"]) == (issuer, "UserPoolClient-id")
    assert RESOURCES["UserPool"]["Condition"] == "CreatesUserPool"
    outputs = template()["Outputs"]
    assert outputs["UserPoolId"]["Condition"] == outputs["UserPoolClientId"]["Condition"]


def test_a_deploy_given_an_issuer_trusts_it_and_makes_no_user_pool() -> None:
    issuer = "https://login.example.com/"
    http, stream = _authorizers({"JwtIssuer": issuer, "JwtAudience": "web,cli"})
    assert http == {"issuer": issuer, "audience": ["web", "cli"]}
    assert (stream["JWT_ISSUER"], stream["JWT_AUDIENCE"]) == (issuer, "web,cli")
    assert not deploy_resolver({"JwtIssuer": issuer}).condition("CreatesUserPool")


def test_the_api_function_ends_before_the_http_api_gives_up_on_it() -> None:
    """Past the HTTP API's 30 s integration limit the caller has had a 503 while the function
    ran on."""
    assert FUNCTIONS["ApiFunction"]["Timeout"] < 30


@pytest.mark.parametrize("definition", sorted((REPO / "statemachine").glob("*.asl.json")))
def test_no_state_machine_names_a_partition(definition: Any) -> None:
    """`arn:aws:` fails in the China and GovCloud partitions (aws-cn, aws-us-gov)."""
    text = definition.read_text()
    assert not re.search(r"arn:aws[a-z-]*:", text)
    for resource in re.findall(r'"Resource": "(arn:[^"]+)"', text):
        assert resource.startswith("arn:${Partition}:"), resource


def test_no_function_gets_a_sam_policy_template_wider_than_it_needs() -> None:
    """DynamoDBCrudPolicy grants Scan, BatchGetItem and DescribeTable, which nothing calls;
    LambdaInvokePolicy grants every function whose name begins with the one named."""
    for name, properties in FUNCTIONS.items():
        for policy in properties.get("Policies", []):
            if isinstance(policy, dict):
                assert not {"DynamoDBCrudPolicy", "LambdaInvokePolicy"} & set(policy), name
    for machine in ("RunStateMachine", "RunExpressStateMachine"):
        for policy in RESOURCES[machine]["Properties"]["Policies"]:
            assert "LambdaInvokePolicy" not in policy, machine
    table = RESOURCES["TableItemsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    granted = {action for statement in table for action in statement["Action"]}
    assert not granted & {"dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"}


def test_every_s3_listing_is_under_a_prefix() -> None:
    statements = [
        statement
        for properties in FUNCTIONS.values()
        for policy in properties.get("Policies", [])
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]
    listings = [s for s in statements if str(s["Action"]).startswith("s3:ListBucket")]
    assert listings
    for statement in listings:
        prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
        prefixes = [prefixes] if isinstance(prefixes, str) else prefixes
        assert all(prefix in ("uploads/*", "outputs/*") for prefix in prefixes), statement


def test_the_asl_names_only_substitutions_the_template_declares() -> None:
    for machine in ("RunStateMachine", "RunExpressStateMachine"):
        properties = RESOURCES[machine]["Properties"]
        definition = (REPO / properties["DefinitionUri"]).read_text()
        used = set(re.findall(r"\$\{(\w+)\}", definition))
        assert used == set(properties["DefinitionSubstitutions"]), machine
        json.loads(definition)


EXPRESS_LIMIT_SECONDS = 300
# What a step meets that only time cures: they go on in Standard, which retries them at
# leisure, rather than being waited out in the Express execution.
SLOW_ERRORS = {
    "Sandbox.Timedout",
    "Lambda.ClientExecutionTimeoutException",
    "TransientBackendError",
    "IdempotencyAlreadyInProgressError",
}


def _express_states() -> dict[str, Any]:
    definition = RESOURCES["RunExpressStateMachine"]["Properties"]["DefinitionUri"]
    states: dict[str, Any] = json.loads((REPO / definition).read_text())["States"]
    return states


def _longest_seconds(state_name: str) -> float:
    """A task's longest run: its function's timeout, once, and the longest waits of its quick
    retries (errors Lambda reports at once: throttling, service errors)."""
    state = _express_states()[state_name]
    (function,) = re.findall(r"\$\{(\w+Function)Arn\}", json.dumps(state))
    timeout = FUNCTIONS[function].get("Timeout", template()["Globals"]["Function"]["Timeout"])
    waits = 0.0
    for retrier in state.get("Retry", []):
        for attempt in range(retrier["MaxAttempts"]):
            wait = retrier["IntervalSeconds"] * retrier.get("BackoffRate", 2) ** attempt
            waits += min(wait, retrier.get("MaxDelaySeconds", wait))
    return float(timeout) + waits


def test_no_express_path_outlives_the_express_executions_five_minutes() -> None:
    """An Express execution is stopped at five minutes, leaving its run to FinishLostRuns.
    So no retry there waits out a slow error, and every step that may start after the
    stretch ends (at most ExpressTierSeconds) ends in time."""
    from threadline.runs.state import TOOL_ROUND_HEADROOM

    states = _express_states()
    for name, state in states.items():
        if state["Type"] != "Task" or name in ("HandOffRun", "FinishRun"):
            continue
        retried = {e for retrier in state.get("Retry", []) for e in retrier["ErrorEquals"]}
        caught = {e: c["Next"] for c in state.get("Catch", []) for e in c["ErrorEquals"]}
        assert not retried & (SLOW_ERRORS | {"States.ALL"}), name
        assert {
            caught.get(error) for error in SLOW_ERRORS - {"IdempotencyAlreadyInProgressError"}
        } == {"HandOffRun"}, name

    # The last check starts within the stretch (polling.while_running).
    last_check = template()["Parameters"]["ExpressTierSeconds"]["MaxValue"]
    # A tool round starts only if it ends within the stretch (RunState.where_tools_run).
    assert TOOL_ROUND_HEADROOM.total_seconds() >= _longest_seconds("ProcessToolCalls")
    after_last_check = last_check + _longest_seconds("CheckRun")
    ends = {
        "handed on": after_last_check + _longest_seconds("HandOffRun"),
        "handed on, that failing": after_last_check
        + _longest_seconds("HandOffRun")
        + _longest_seconds("FinishRun"),
        "cancelled at the deadline": after_last_check
        + _longest_seconds("CancelRun")
        + _longest_seconds("FinishRun"),
        "finished": after_last_check + _longest_seconds("FinishRun"),
    }
    assert max(ends.values()) < EXPRESS_LIMIT_SECONDS, ends
