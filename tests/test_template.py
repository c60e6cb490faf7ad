"""template.yaml's promises that a linter cannot check: every function it declares points at
real code, the state machine's substitutions are declared, logs and grants are as documented.
(cfn-lint, `sam validate --lint`, asl-validator and checkov run in `make lint`, once.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.aws.handler_modules import load_handler_module
from local.aws.intrinsics import ProvisionedResource, Resolver
from local.aws.parameters import parameter_values
from tests.conftest import REPO, template
from tests.deployed import deploy_resolver
from threadline.runs.records import (
    ANSWER_LIMIT_BYTES,
    TOOL_CALL_RECORDS_LIMIT_BYTES,
    TOOL_CALLS_LIMIT_BYTES,
)

FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(REPO / ".tools" / "bin")) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make dev`")
    return found


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_handler_resolves_to_a_callable(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]
    module_name, _, attribute = properties["Handler"].rpartition(".")
    source = REPO / properties["CodeUri"] / f"{module_name}.py"
    assert source.is_file(), f"{logical_id}: {source} does not exist"
    # As Lambda loads it: the code directory on sys.path, for the handler's sibling modules.
    module = load_handler_module(
        REPO / properties["CodeUri"], module_name, f"handler_under_test_{logical_id}"
    )
    assert callable(getattr(module, attribute, None)), f"{logical_id}: no {attribute} in {source}"


def test_layer_requirements_match_the_lock() -> None:
    """The layer ships what uv.lock pins (regenerate with `make requirements`)."""
    result = subprocess.run(
        [
            _tool("uv"),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-package",
            "boto3",
            "--no-emit-package",
            "botocore",
            "--no-emit-package",
            "s3transfer",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    shipped = (REPO / "layers" / "threadline" / "requirements.txt").read_text()
    assert shipped.split() == result.stdout.split()


def test_dashboard_body_is_json() -> None:
    body = template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert {widget["type"] for widget in widgets} == {"metric", "alarm"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_sample_event(logical_id: str) -> None:
    """`sam local invoke <Function> -e events/<dir>.json` works for every function."""
    code_dir = Path(FUNCTIONS[logical_id]["CodeUri"]).name
    event = REPO / "events" / f"{code_dir}.json"
    assert event.is_file(), f"{logical_id}: add {event.relative_to(REPO)}"
    assert json.loads(event.read_text())


RESOURCES = template()["Resources"]
FILES_BUCKET_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:s3:::"
    + RESOURCES["FilesBucket"]["Properties"]["BucketName"]["Fn::Sub"]
}


def test_http_api_logs_access_as_json_without_request_content() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert RESOURCES["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == 30
    # Route keys, not paths (which carry ids); nothing of bodies, headers or JWT claims.
    assert json.loads(settings["Format"]) == {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationErrorMessage": "$context.integrationErrorMessage",
    }


def test_files_bucket_logs_access_to_a_private_log_bucket() -> None:
    files = RESOURCES["FilesBucket"]
    assert files["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": "AccessLogsBucket"
    }
    # S3 checks the target's policy when logging is turned on.
    assert files["DependsOn"] == "AccessLogsBucketPolicy"

    logs = RESOURCES["AccessLogsBucket"]["Properties"]
    (encryption,) = logs["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert all(logs["PublicAccessBlockConfiguration"].values())
    assert logs["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (expiry,) = logs["LifecycleConfiguration"]["Rules"]
    assert (expiry["Status"], expiry["ExpirationInDays"]) == ("Enabled", 90)


def test_only_s3_log_delivery_for_the_files_bucket_writes_access_logs() -> None:
    policy = RESOURCES["AccessLogsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "AccessLogsBucket"}
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == {"Fn::Sub": "${AccessLogsBucket.Arn}/*"}
    assert allow["Condition"] == {
        "ArnLike": {"aws:SourceArn": FILES_BUCKET_ARN},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_api_concurrency_limit_reserves_the_request_facing_functions_only_when_set() -> None:
    declared = template()
    parameter = declared["Parameters"]["ApiConcurrencyLimit"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 0, 0)
    reserved = {
        logical_id: properties["ReservedConcurrentExecutions"]
        for logical_id, properties in FUNCTIONS.items()
        if "ReservedConcurrentExecutions" in properties
    }
    conditional = {
        "Fn::If": [
            "HasApiConcurrencyLimit",
            {"Ref": "ApiConcurrencyLimit"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # Nothing else: a reservation fails to deploy on an account whose quota is 10 (Lambda
    # keeps 10 unreserved); the scheduled jobs run one at a time by a lease instead.
    assert reserved == {"ApiFunction": conditional, "OpenAIWebhookFunction": conditional}
    condition = declared["Conditions"]["HasApiConcurrencyLimit"]
    for value, reserves in (("0", False), ("25", True)):
        resolver = Resolver(
            parameters=parameter_values(declared["Parameters"], {"ApiConcurrencyLimit": value}),
            pseudo_parameters={},
            condition_definitions={"HasApiConcurrencyLimit": condition},
            mappings={},
        )
        assert resolver.resolve(conditional) == (value if reserves else None)


def test_the_default_deploy_reserves_no_concurrency_and_says_what_the_account_needs() -> None:
    """A new account's concurrency quota can be 10, and Lambda keeps 10 unreserved: any
    reservation fails to deploy there. ApiConcurrencyLimit (0 by default) says so."""
    declared = template()
    resolver = deploy_resolver()
    for logical_id, properties in FUNCTIONS.items():
        reserved = properties.get("ReservedConcurrentExecutions")
        assert reserved is None or resolver.resolve(reserved) is None, logical_id
    description = " ".join(declared["Parameters"]["ApiConcurrencyLimit"]["Description"].split())
    assert "The account must keep 10 unreserved after both." in description


def test_every_checkov_skip_gives_its_reason() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert skip.get("comment", "").strip(), (
            f"{logical_id}: {skip['id']} skipped without a reason"
        )
        assert "\n" not in skip["comment"], (logical_id, skip)


def test_no_bucket_wide_s3_grants_and_the_tools_never_read_users_files() -> None:
    """Only the functions that build the Data Analyst's tools read its database, only with an
    s3:// database configured and only that object, and never what users uploaded or were
    given, whatever the model asks for."""
    for logical_id, properties in FUNCTIONS.items():
        templates = {
            name
            for policy in properties.get("Policies", [])
            if isinstance(policy, dict)
            for name in policy
        }
        assert not templates & {"S3ReadPolicy", "S3CrudPolicy", "S3FullAccessPolicy"}, logical_id
    conditional = {
        "Fn::If": [
            "AnalystDatabaseInS3",
            {"Ref": "ReadAnalystDatabasePolicy"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    readers = {
        logical_id
        for logical_id, properties in FUNCTIONS.items()
        if conditional in properties.get("Policies", [])
    }
    assert readers == {"StartRunFunction", "ProcessToolCallsFunction"}
    policy = RESOURCES["ReadAnalystDatabasePolicy"]
    assert policy["Condition"] == "AnalystDatabaseInS3"
    allow, deny = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (allow["Effect"], allow["Action"]) == ("Allow", "s3:GetObject")
    assert (deny["Effect"], deny["Action"]) == ("Deny", "s3:GetObject")
    assert deny["Resource"] == [
        {"Fn::Sub": "${FilesBucket.Arn}/uploads/*"},
        {"Fn::Sub": "${FilesBucket.Arn}/outputs/*"},
    ]


@pytest.mark.parametrize(
    ("database", "grants", "key"),
    [
        ("", False, None),
        ("/opt/analyst.sqlite3", False, None),
        ("s3://threadline-dev-123-us-east-1/analyst/db.sqlite3", True,
         "arn:aws:s3:::threadline-dev-123-us-east-1/analyst/db.sqlite3"),
    ],
)  # fmt: skip
def test_the_analyst_database_grant_is_its_one_object(
    database: str, grants: bool, key: str | None
) -> None:
    resolver = deploy_resolver({"AnalystDatabase": database})
    assert resolver.condition("AnalystDatabaseInS3") is grants
    if grants:
        statement = RESOURCES["ReadAnalystDatabasePolicy"]["Properties"]["PolicyDocument"]
        assert resolver.resolve(statement["Statement"][0]["Resource"]) == key


def _task_states() -> list[tuple[str, str, dict[str, object]]]:
    """(state machine, state name, state) of every Task state of both run state machines."""
    found = []
    for machine in ("RunStateMachine", "RunExpressStateMachine"):
        definition_uri = template()["Resources"][machine]["Properties"]["DefinitionUri"]
        states = json.loads((REPO / definition_uri).read_text())["States"]
        found += [(machine, name, s) for name, s in states.items() if s["Type"] == "Task"]
    return found


def _function_timeout(state: dict[str, object]) -> int:
    """The timeout of the function a task invokes (`${XFunctionArn}` or its Parameters')."""
    text = json.dumps(state)
    (logical_id,) = set(re.findall(r"\$\{(\w+Function)Arn\}", text))
    default = template()["Globals"]["Function"]["Timeout"]
    return int(FUNCTIONS[logical_id].get("Timeout", default))


# What Step Functions reports for a function that died (out of memory), ran out of time
# (python3.13: Sandbox.Timedout) or whose invocation timed out.
DIED = {"Lambda.Unknown", "Sandbox.Timedout", "Lambda.ClientExecutionTimeoutException"}


def _handled(state: dict[str, Any]) -> tuple[set[str], dict[str, str]]:
    """The errors a task retries, and where each error it catches goes."""
    retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
    caught = {
        error: catcher["Next"]
        for catcher in state.get("Catch", [])
        for error in catcher["ErrorEquals"]
    }
    return retried, caught


@pytest.mark.parametrize(("machine", "name", "state"), _task_states())
def test_every_task_is_retried_when_its_execution_environment_dies(
    machine: str, name: str, state: dict[str, Any]
) -> None:
    """A step whose environment died, or ran out of time, is retried (every task is
    idempotent) rather than failing the run; in the Express tier one that timed out goes on in
    Standard. One that died in the middle of its work holds its idempotency record until the
    invocation's time would have run out: its retries wait longer than that."""
    retried, caught = _handled(state)
    for error in DIED:
        handed_on = machine == "RunExpressStateMachine" and caught.get(error) == "HandOffRun"
        assert error in retried or "States.ALL" in retried or handed_on, f"{machine}.{name}"
    for retrier in state.get("Retry", []):
        if "IdempotencyAlreadyInProgressError" in retrier["ErrorEquals"]:
            waits = [
                retrier["IntervalSeconds"] * retrier["BackoffRate"] ** attempt
                for attempt in range(retrier["MaxAttempts"])
            ]
            assert sum(waits) > _function_timeout(state), f"{machine}.{name}"
    if name in ("StartRun", "ProcessToolCalls"):  # the tasks with an idempotency record
        if machine == "RunStateMachine":
            assert "IdempotencyAlreadyInProgressError" in retried, name
        else:
            assert caught["IdempotencyAlreadyInProgressError"] == "HandOffRun", name


@pytest.mark.parametrize(
    ("machine", "filename"),
    [("RunStateMachine", "run.asl.json"), ("RunExpressStateMachine", "run_express.asl.json")],
)
def test_the_functions_running_executions_call_survive_a_deploy(
    machine: str, filename: str
) -> None:
    """An execution keeps the definition it started with for its whole life (a Standard one up
    to a day): every function the last landed release's definition calls must still be there,
    under the same logical id (`substitutions.json` records which each placeholder named then).
    Renaming or removing one deletes the function that runs in flight still call."""
    released_dir = REPO / "tests" / "fixtures" / "released"
    released = (released_dir / filename).read_text()
    called = {part.split("}")[0] for part in released.split("${")[1:]}
    named_then = json.loads((released_dir / "substitutions.json").read_text())[machine]
    provided = template()["Resources"][machine]["Properties"]["DefinitionSubstitutions"]
    assert called <= set(named_then)
    for placeholder in called:
        assert provided.get(placeholder) == {"Fn::GetAtt": [named_then[placeholder], "Arn"]}, (
            f"{machine}: {placeholder} no longer names {named_then[placeholder]}"
        )


def test_no_run_state_machine_is_named() -> None:
    """Giving a state machine a name (or changing it) replaces it on the next deploy, and a
    deleted state machine's running executions are terminated at their next transition: the
    run machines keep the names CloudFormation gives them (FinishRun finds them through SSM
    parameters instead)."""
    resources = template()["Resources"]
    for machine in ("RunStateMachine", "RunExpressStateMachine"):
        assert "Name" not in resources[machine]["Properties"], machine


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_is_in_one_alarm_on_its_errors_and_throttles(metric: str) -> None:
    """Alarms on metric math take at most 10 metrics (a hard limit: a deploy fails beyond).
    Lambda tools (code in the assistants folder) are watched too: their errors are also tool
    errors, which ToolErrorRateAlarm rates, but a throttled or broken tool is the
    operator's to hear of."""
    watched: list[str] = []
    for resource in RESOURCES.values():
        queries = resource.get("Properties", {}).get("Metrics", [])
        stats = [query["MetricStat"]["Metric"] for query in queries if "MetricStat" in query]
        assert len(stats) <= 10
        watched += [
            stat["Dimensions"][0]["Value"]["Ref"]
            for stat in stats
            if stat["Namespace"] == "AWS/Lambda" and stat["MetricName"] == metric
        ]
    assert "SalesTargetsToolFunction" in FUNCTIONS
    assert sorted(watched) == sorted(FUNCTIONS)


def test_the_execution_alarms_watch_both_run_state_machines() -> None:
    """Most runs end in the Express tier: an alarm on the Standard machine alone misses them."""
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        stats = [
            q["MetricStat"]["Metric"] for q in properties.get("Metrics", []) if "MetricStat" in q
        ]
        stats += [properties] if "MetricName" in properties else []
        machines = [
            dimension["Value"]["Ref"]
            for stat in stats
            if stat["Namespace"] == "AWS/States"
            for dimension in stat["Dimensions"]
        ]
        if machines:
            assert set(machines) == {"RunStateMachine", "RunExpressStateMachine"}, name
            assert machines.count("RunStateMachine") == machines.count("RunExpressStateMachine")


# What each streaming function loads from its own environment (Lambda gives a function only
# its own variables; the local stack shares one environment between all of them).
STREAM_FUNCTION_SETTINGS = {
    "StreamAuthorizerFunction": "TokenSettings",
    "StreamConnectionsFunction": "StreamSettings",
    "PushUpdatesFunction": "StreamSettings",
    "RelayTextFunction": "StreamSettings",
}


@pytest.mark.parametrize("logical_id", sorted(STREAM_FUNCTION_SETTINGS))
def test_a_streaming_function_has_the_settings_it_loads(
    logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline import runtime, settings

    declared = template()
    resolver = deploy_resolver()
    variables = resolver.resolve(
        {
            **declared["Globals"]["Function"]["Environment"]["Variables"],
            **FUNCTIONS[logical_id].get("Environment", {}).get("Variables", {}),
        }
    )
    for name in os.environ.copy():
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    runtime.reset()
    try:
        loaded = settings.load(getattr(settings, STREAM_FUNCTION_SETTINGS[logical_id]))
        starts_relays = logical_id in ("StreamConnectionsFunction", "PushUpdatesFunction")
        assert not starts_relays or loaded.relay_function_name
    finally:
        monkeypatch.undo()
        runtime.reset()


def test_a_run_record_has_room_for_the_longest_message_answer_and_tool_calls() -> None:
    """A run's DynamoDB item (400 KB) holds its message (4 bytes a character at most), the
    answer or the calls a round waits on, and the records of its tool calls; the rest of the
    record (timeline, approvals, files, ids) has the room left, over 100 KB."""
    longest_message = 4 * template()["Parameters"]["MaxMessageChars"]["MaxValue"]
    kept = longest_message + max(ANSWER_LIMIT_BYTES, TOOL_CALLS_LIMIT_BYTES)
    assert kept + TOOL_CALL_RECORDS_LIMIT_BYTES < 400 * 1024 - 100_000


def _timeout(properties: dict[str, Any]) -> int:
    return int(properties.get("Timeout", template()["Globals"]["Function"]["Timeout"]))


def test_every_function_fits_lambdas_timeout_and_memory() -> None:
    """Lambda stops a function at 15 minutes at most, and gives it 128 MB to 10,240 MB (the
    local runtime stops none, but reports one past its Timeout as timed out)."""
    memory = template()["Globals"]["Function"]["MemorySize"]
    for logical_id, properties in FUNCTIONS.items():
        assert 1 <= _timeout(properties) <= 900, logical_id
        assert 128 <= int(properties.get("MemorySize", memory)) <= 10_240, logical_id


def test_every_function_behind_the_http_api_ends_before_its_30_s_integration_timeout() -> None:
    """Past 30 s API Gateway answers 503 while the function runs on: a request's function
    times out first, so the caller hears the product's answer or the function's error."""
    routed = [
        logical_id
        for logical_id, properties in FUNCTIONS.items()
        if any(event["Type"] == "HttpApi" for event in properties.get("Events", {}).values())
    ]
    assert sorted(routed) == ["ApiFunction", "OpenAIWebhookFunction"]
    assert all(_timeout(FUNCTIONS[logical_id]) < 30 for logical_id in routed)


# The longest deploy the template allows: a 16-character stage in the longest partition and
# region, a 128-character stack name, so that every name CloudFormation generates is at its
# service's limit; the free-form parameters long but ordinary. (They may be longer: with both
# secret names at 512 characters and the database's S3 key at 1,024 the largest is 3,914
# bytes; an OpenAIBaseUrl of 500 characters more takes seven functions over 4 KB.)
LONGEST_PARTITION, LONGEST_REGION, ACCOUNT = "aws-us-gov", "us-gov-west-1", "123456789012"
LONGEST_STACK = "s" * 128
LONG_PARAMETERS = {
    "Stage": "s" * 16,
    "Model": "m" * 64,
    "OpenAIBaseUrl": "https://" + "h" * 100 + "/v1",
    "OpenAIApiKeySecretName": "k" * 128,
    "WebhookSecretName": "w" * 128,
    "AnalystDatabase": "s3://" + "b" * 63 + "/" + "k" * 200,
    "UploadAllowedTypes": "csv,tsv,json,txt,md,pdf,docx,xlsx,pptx,png,jpg,jpeg,gif,webp,html",
    "CallbackAllowedHosts": ",".join(f"*.host{n}.example.com" for n in range(10)),
    "JwtIssuer": "https://" + "i" * 100,
    "JwksUrl": "https://" + "j" * 120,
    "JwtAudience": ",".join(["a" * 26] * 5),
}


def _longest(resolver: Resolver, logical_id: str, declared: dict[str, Any]) -> ProvisionedResource:
    """What a resource's Ref and attributes are at their longest, for the kinds the
    functions' environments name (any other: its name, or a generated one)."""
    kind, properties = declared["Type"], declared.get("Properties", {})
    name = resolver.resolve(properties["Name"]) if "Name" in properties else None

    def generated(limit: int) -> str:  # CloudFormation's stack-LogicalId-SUFFIX, cut to fit
        return f"{LONGEST_STACK}-{logical_id}-{'X' * 13}"[:limit]

    arn = f"arn:{LONGEST_PARTITION}:{{}}:{LONGEST_REGION}:{ACCOUNT}:{{}}"
    function, machine = generated(64), arn.format("states", f"stateMachine:{generated(80)}")
    pool = f"{LONGEST_REGION}_XXXXXXXXX"
    longest = {
        "AWS::Serverless::Function": ProvisionedResource(
            function, {"Arn": arn.format("lambda", f"function:{function}")}
        ),
        "AWS::Serverless::StateMachine": ProvisionedResource(
            machine, {"Arn": machine, "Name": generated(80)}
        ),
        "AWS::SQS::Queue": ProvisionedResource(
            f"https://sqs.{LONGEST_REGION}.amazonaws.com/{ACCOUNT}/{generated(80)}",
            {"Arn": arn.format("sqs", generated(80))},
        ),
        "AWS::SecretsManager::Secret": ProvisionedResource(
            arn.format("secretsmanager", f"secret:{name or generated(512)}-XXXXXX")
        ),
        "AWS::Cognito::UserPool": ProvisionedResource(
            pool, {"ProviderURL": f"cognito-idp.{LONGEST_REGION}.amazonaws.com/{pool}"}
        ),
        "AWS::Cognito::UserPoolClient": ProvisionedResource("c" * 26),
    }
    return longest.get(
        kind,
        ProvisionedResource(name or generated(255), {"Arn": arn.format("any", generated(255))}),
    )


@pytest.mark.parametrize("issuer", ["", LONG_PARAMETERS["JwtIssuer"]])
def test_every_functions_environment_fits_lambdas_4_kb(issuer: str) -> None:
    """Lambda refuses a function whose variables (names and values) pass 4 KB, and a Globals
    variable is in every function's. Measured at the longest deploy above, with the stack's
    own user pool and with an issuer of the operator's."""
    declared = template()
    resolver = deploy_resolver(
        {**LONG_PARAMETERS, "JwtIssuer": issuer},
        pseudo_parameters={
            "AWS::Region": LONGEST_REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": LONGEST_PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": LONGEST_STACK,
        },
    )
    for logical_id, resource in declared["Resources"].items():
        resolver.add_resource(logical_id, _longest(resolver, logical_id, resource))
    for logical_id, properties in FUNCTIONS.items():
        variables = resolver.resolve(
            {
                **declared["Globals"]["Function"]["Environment"]["Variables"],
                **properties.get("Environment", {}).get("Variables", {}),
            }
        )
        size = sum(
            len(name.encode()) + len(str(value).encode()) for name, value in variables.items()
        )
        assert size <= 4 * 1024, f"{logical_id}: {size} bytes"
