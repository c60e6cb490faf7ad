"""The docs cannot drift from what they describe: the generated parts cover their sources, the
code samples are real, and the prose check finds what it should."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from docs import generate, prose
from docs.examples.verify_callback import verified_callback
from local.aws.template import load_template
from tests.conftest import REPO
from threadline.assistant_config import load_catalogue
from threadline.events.changes import RUN_DETAIL_TYPES, SOURCE, RunEventDetail
from threadline.models import RunStatus

TEMPLATE = load_template(REPO / "template.yaml")
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# `make x` in prose, or a command line of a code block: make x, $(make -s x).
MAKE_COMMAND = re.compile(r"(?:`|^\s*|\$\()make (?:-s )?([a-z][a-z-]+)", re.MULTILINE)
EDGE = re.compile(r"^\s+(s_\w+) (-->|-\.->)(?:\|\"(.*?)\"\|)? (s_\w+)$", re.MULTILINE)


def _table_rows(markdown: str) -> dict[str, list[list[str]]]:
    """A generated table's rows by their first line's name, each cell split into its lines."""
    rows = {}
    for line in markdown.splitlines()[2:]:
        cells = [cell.strip().split("<br>") for cell in line.strip("|").split(" | ")]
        rows[cells[0][0].strip("`")] = cells
    return rows


def test_the_configuration_table_lists_every_parameter_with_its_default() -> None:
    rows = _table_rows(generate.configuration_table(TEMPLATE))

    assert list(rows) == list(TEMPLATE["Parameters"])
    for name, parameter in TEMPLATE["Parameters"].items():
        default = str(parameter.get("Default", ""))
        assert rows[name][1][0] == (f"`{default}`" if default else "empty"), name


def test_the_configuration_table_names_the_variables_the_functions_read() -> None:
    rows = _table_rows(generate.configuration_table(TEMPLATE))

    assert rows["RunTimeoutSeconds"][0][1:] == ["`RUN_TIMEOUT_SECONDS`"]  # the Globals
    assert rows["MaxMessageChars"][0][1:] == ["`MAX_MESSAGE_CHARS` (ApiFunction)"]  # one function
    assert "`JWT_ISSUER` (StreamAuthorizerFunction)" in rows["JwtIssuer"][0]  # inside an !If
    assert rows["Stage"][0] == ["`Stage`"]  # in resources' names, read by no function as itself
    assert rows["ExpressTierSeconds"][1] == ["`180`", "0 to 180"]
    assert rows["Backend"][1] == ["`responses`", "`responses`, `assistants`"]


@pytest.mark.parametrize("path", sorted(generate.MACHINES.values()), ids=lambda p: p.name)
def test_each_state_machine_diagram_has_every_state_and_transition(path: Path) -> None:
    definition = json.loads(path.read_text())
    diagram = generate.state_machine_diagram(definition)

    nodes = set(re.findall(r'^\s+s_\w+[\[({/]+"(\w+)"', diagram, re.MULTILINE))
    assert nodes == set(definition["States"])
    drawn = {
        (source, target, arrow == "-.->") for source, arrow, _, target in EDGE.findall(diagram)
    }
    expected = set()
    for name, state in definition["States"].items():
        targets = [choice["Next"] for choice in state.get("Choices", [])]
        targets += [state[key] for key in ("Next", "Default") if key in state]
        expected |= {(f"s_{name}", f"s_{target}", False) for target in targets}
        expected |= {(f"s_{name}", f"s_{c['Next']}", True) for c in state.get("Catch", [])}
    assert drawn == expected
    assert f"start((start)) --> s_{definition['StartAt']}" in diagram


def test_a_choice_is_labelled_with_the_value_it_routes_on() -> None:
    definition = json.loads((REPO / "statemachine" / "run.asl.json").read_text())
    labels = {
        (s, t): label for s, _, label, t in EDGE.findall(generate.state_machine_diagram(definition))
    }

    assert labels[("s_RouteOnStatus", "s_ProcessToolCalls")] == "run_tools"
    assert labels[("s_RouteOnStatus", "s_FinishRun")] == "otherwise"
    assert labels[("s_WaitForWebhook", "s_CheckRun")] == "timeout"


def test_a_state_the_diagram_cannot_draw_fails_the_build() -> None:
    definition = {"StartAt": "Fan", "States": {"Fan": {"Type": "Parallel", "End": True}}}

    with pytest.raises(ValueError, match="Fan: a Parallel state cannot be drawn"):
        generate.state_machine_diagram(definition)


def test_the_api_reference_has_every_operation_and_schema() -> None:
    document = json.loads(generate.OPENAPI.read_text())
    reference = generate.api_reference(document)

    for method, path in generate.operations(document):
        assert f"#### `{method} {path}`" in reference
    for name in document["components"]["schemas"]:
        assert f"#### {name} {{#schema-{name.lower()}}}" in reference
    # Every link to a schema goes to one the page has.
    for anchor in re.findall(r"\]\(#(schema-[\w-]+)\)", reference):
        assert f"{{#{anchor}}}" in reference


def test_the_cost_table_has_a_row_per_run_length_and_the_loops_figures() -> None:
    results, source = generate.bench_results()
    table = generate.cost_table(json.loads(generate.BENCH_SNAPSHOT.read_text()))

    assert source
    lengths = sorted({row["run_length_s"] for row in results["by_run_length"]})
    assert len(
        [line for line in table.splitlines() if line.startswith("| ") and " s |" in line]
    ) == len(lengths)
    assert "| 5 s | 0.034\\* / 0.048\\* / 0.055\\* | 0.017\\* |" in table
    assert "| 3,600 s | 24.0 | 12.0 | 0.82 / 0.84 / 0.97 | 186 (3,600) |" in table
    assert "Measured on 2026-11-29." in table


def test_every_generated_part_a_page_includes_is_written() -> None:
    included = {
        name
        for page in PAGES
        for name in re.findall(r'--8<-- "\.local/docs/([\w.-]+)"', page.read_text())
    }

    assert included == set(generate.pages())


def test_the_events_rule_matches_every_ended_run(tmp_path: Path) -> None:
    rule = load_resources(DOCS / "examples" / "runs_ended_rule.yaml", tmp_path)
    pattern = rule["RunsEndedRule"]["Properties"]["EventPattern"]
    ended = {RUN_DETAIL_TYPES[status] for status in RunStatus if status.is_terminal}

    assert pattern["source"] == [SOURCE]
    assert set(pattern["detail-type"]) == ended


def load_resources(path: Path, folder: Path) -> dict[str, Any]:
    """A template's resources section, read with the short-form tags a template allows."""
    lines = path.read_text().splitlines()
    wrapped = folder / "template.yaml"
    wrapped.write_text("Resources:\n" + "".join(f"  {line}\n" for line in lines))
    resources: dict[str, Any] = load_template(wrapped)["Resources"]
    return resources


def test_the_example_event_is_one_threadline_publishes() -> None:
    event = json.loads((DOCS / "examples" / "run_completed_event.json").read_text())
    detail = RunEventDetail.model_validate(event["detail"])

    assert event["source"] == SOURCE
    assert event["detail-type"] == RUN_DETAIL_TYPES[detail.status]
    assert set(event["detail"]) <= set(RunEventDetail.model_fields)
    assert detail.event_id == f"{detail.run_id}.{detail.status}"


def test_the_callback_check_accepts_a_signed_callback_and_refuses_a_forged_one() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"type": "run.completed", "data": {"id": "run_1"}})
    signer = Webhook(secret)
    now = datetime.now(UTC)
    headers = {"webhook-id": "run_1.completed", "webhook-timestamp": str(int(now.timestamp()))}
    headers["webhook-signature"] = signer.sign(headers["webhook-id"], now, body)

    assert verified_callback(secret, body.encode(), headers)["data"] == {"id": "run_1"}
    with pytest.raises(WebhookVerificationError):
        verified_callback(secret, body.replace("run_1", "run_2").encode(), headers)


def test_the_example_assistant_loads_as_the_product_loads_it(tmp_path: Path) -> None:
    folder = tmp_path / "docs_examples"
    shutil.copytree(DOCS / "examples" / "assistants", folder)

    catalogue = load_catalogue(folder)

    planner = catalogue.assistants["planner"]
    assert [tool.name for tool in planner.lambda_tools] == ["get_sales_target"]
    assert [server.server_label for server in planner.mcp_servers] == ["finance"]
    assert catalogue.schema_problems() == []


def test_every_make_target_the_docs_name_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
    named = {
        target
        for page in [REPO / "README.md", *PAGES]
        for target in MAKE_COMMAND.findall(page.read_text())
    }

    assert named, "the docs name no make target"
    assert named <= targets, named - targets


def test_every_alarm_in_the_template_is_explained_in_operations() -> None:
    alarms = [
        name
        for name, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    rows = re.findall(r"^\| `(\w+)` \|", (DOCS / "operations.md").read_text(), re.MULTILINE)

    assert alarms
    assert sorted(rows) == sorted(alarms)


def test_the_readme_is_one_screen_and_links_only_to_pages_that_exist() -> None:
    readme = (REPO / "README.md").read_text()

    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\((docs/[\w.-]+\.md)(?:#[\w-]+)?\)", readme)
    assert links
    assert all((REPO / link).exists() for link in links)


def test_the_prose_check_reports_long_sentences_and_skips_code_and_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.md"
    long = " ".join(["word"] * 41) + "."
    page.write_text(
        "# A heading that is not a sentence at all\n\n"
        f"Short one. {long}\n\n"
        "- An item; a clause; another clause.\n\n"
        f"```\n{long}\n```\n\n"
        f"| {long} |\n|---|\n\n"
        "A [link with text](https://example.com/a.b.c) and `code. with. dots` here.\n"
    )

    assert prose.main([str(page)]) == 1

    reported = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0:2] for line in reported] == [
        [f"{page}:3", "41 words"],
        [f"{page}:5", "2 semicolons"],
    ]
    lines = [s.text for s in prose.sentences(page)]
    assert "A link with text and code here." in lines
