"""The scripted model: one deterministic decision engine behind both API families.

Both the Responses and the Assistants layers translate their state into a `ModelInput`
(a flat list of `Event`s) and turn the returned `Outcome` back into their own JSON shapes.
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

StepKind = Literal["calls", "say", "fail", "incomplete", "expire", "http_error", "hang", "image"]
EventKind = Literal["user", "assistant", "call", "output"]
# mcp_approval: the turn ends asking for approval of a remote MCP call (no message).
OutcomeKind = Literal["calls", "text", "mcp_approval", "failed", "incomplete", "expired", "hang"]

ECHO_LIMIT = 200
PREVIEW_LIMIT = 300
# A question asks for an offered tool when it names it ("export_csv" or "export csv"), or
# shares this many words of five letters or more with its description.
DESCRIPTION_WORDS_TO_MATCH = 2
_WORD = re.compile(r"[a-z]{5,}")
_COMMON_WORDS = frozenset(
    {"about", "there", "their", "these", "those", "which", "would", "could", "should", "other"}
)
_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def count_tokens(text: str) -> int:
    """A stable, plausible stand-in for a tokenizer: about four characters per token."""
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class Step:
    """One scripted model turn (or injected HTTP error). Build with the classmethods."""

    kind: StepKind
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    text: str = ""
    code: str = "server_error"
    message: str = ""
    reason: str = ""
    status: int = 0
    retry_after: float | None = None
    png: bytes = b""
    filename: str = ""
    cited: bool = True
    latency_seconds: float | None = None  # this turn's model latency; None: the server's

    def taking(self, seconds: float) -> Step:
        """This step, finishing `seconds` after its turn starts whatever the server's latency."""
        return replace(self, latency_seconds=seconds)

    @classmethod
    def call(cls, name: str, args: dict[str, Any] | None = None) -> Step:
        return cls("calls", tool_calls=((name, args or {}),))

    @classmethod
    def calls(cls, calls: Iterable[tuple[str, dict[str, Any]]]) -> Step:
        return cls("calls", tool_calls=tuple((name, args) for name, args in calls))

    @classmethod
    def say(cls, text: str) -> Step:
        return cls("say", text=text)

    @classmethod
    def fail(
        cls, code: str = "server_error", message: str = "The model failed (scripted)."
    ) -> Step:
        return cls("fail", code=code, message=message)

    @classmethod
    def incomplete(
        cls,
        reason: str = "max_output_tokens",
        calls: Iterable[tuple[str, dict[str, Any]]] = (),
    ) -> Step:
        """A turn cut short; with `calls`, the function calls it had already written."""
        return cls("incomplete", reason=reason, tool_calls=tuple(calls))

    @classmethod
    def expire(cls) -> Step:
        """Runs end "expired". Responses have no such status (nor an "expired" error code):
        they end "failed" with code "server_error" and a message saying it expired."""
        return cls("expire")

    @classmethod
    def http_error(
        cls, status: int = 429, retry_after: float | None = None, message: str = ""
    ) -> Step:
        """Not a turn: the next POST starting one (create, or submit outputs) gets this error."""
        return cls("http_error", status=status, retry_after=retry_after, message=message)

    @classmethod
    def hang(cls) -> Step:
        """Stays in_progress until cancelled (a synchronous response returns in_progress)."""
        return cls("hang")

    @classmethod
    def image(
        cls, text: str, png_bytes: bytes, filename: str = "chart.png", *, cited: bool = True
    ) -> Step:
        """An answer with a generated file, as code interpreter would produce it. A Responses
        answer cites it unless `cited` is False: then only its container holds it."""
        return cls("image", text=text, png=png_bytes, filename=filename, cited=cited)


class Script:
    """FIFO of Steps; a step pushed with a key serves only turns with that key, and takes
    precedence over unkeyed steps there. A run's key is its thread id. A response's key is its
    conversation's id if it has one, else its own request's `metadata["thread"]` if present
    (so `previous_response_id` chains can be told apart; it is not inherited along the
    chain), else None, which only unkeyed steps serve."""

    def __init__(self) -> None:
        self._steps: deque[tuple[str | None, Step]] = deque()
        self._lock = threading.Lock()

    def push(self, step: Step, key: str | None = None) -> None:
        with self._lock:
            self._steps.append((key, step))

    def extend(self, steps: Iterable[Step], key: str | None = None) -> None:
        for step in steps:
            self.push(step, key)

    def take(self, key: str | None) -> Step | None:
        with self._lock:
            entries = list(self._steps)
            keyed = [i for i, (k, _) in enumerate(entries) if key is not None and k == key]
            unkeyed = [i for i, (k, _) in enumerate(entries) if k is None]
            candidates = keyed or unkeyed
            if not candidates:
                return None
            chosen = candidates[0]
            del self._steps[chosen]
            return entries[chosen][1]

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._steps)


@dataclass(frozen=True)
class Rule:
    """When the latest user message matches `pattern`, call these tools in one turn."""

    pattern: str
    calls: list[tuple[str, dict[str, Any]]]

    def matches(self, text: str, offered: Sequence[str]) -> bool:
        return all(name in offered for name, _ in self.calls) and bool(
            re.search(self.pattern, text, re.IGNORECASE)
        )


_REVENUE_BY_REGION = (
    "SELECT region, ROUND(SUM(amount), 2) AS revenue FROM sales "
    "GROUP BY region ORDER BY revenue DESC"
)
_TOP_PRODUCTS = (
    "SELECT p.name, p.category, ROUND(SUM(s.amount), 2) AS revenue FROM sales s "
    "JOIN products p ON p.id = s.product_id GROUP BY p.id ORDER BY revenue DESC LIMIT 5"
)
_MONTHLY = (
    "SELECT strftime('%Y-%m', sale_date) AS month, ROUND(SUM(amount), 2) AS revenue "
    "FROM sales GROUP BY month ORDER BY month"
)
_CUSTOMERS_BY_REGION = (
    "SELECT region, COUNT(*) AS customers FROM customers GROUP BY region ORDER BY customers DESC"
)

# The demo's Data Analyst over sales/customers/products. First match wins, so the schema
# rule comes before the table-specific ones ("which columns does customers have?").
DEFAULT_PLAYBOOK: list[Rule] = [
    Rule(
        r"\bexport\b.*\bcsv\b",
        [
            (
                "export_query_csv",
                {"query": _REVENUE_BY_REGION, "filename": "revenue_by_region.csv"},
            )
        ],
    ),
    Rule(
        r"\b(schema|columns?|tables?)\b",
        [
            ("get_table_schema", {"table_name": "sales"}),
            ("get_table_schema", {"table_name": "products"}),
        ],
    ),
    Rule(r"\b(sales|revenue)\s+by\s+region\b", [("query_database", {"query": _REVENUE_BY_REGION})]),
    Rule(r"\btop\s+products?\b", [("query_database", {"query": _TOP_PRODUCTS})]),
    Rule(r"\b(monthly|by\s+month|trend)\b", [("query_database", {"query": _MONTHLY})]),
    Rule(r"\bcustomers?\b", [("query_database", {"query": _CUSTOMERS_BY_REGION})]),
]


@dataclass(frozen=True)
class Event:
    """One entry of the context the model sees. For calls `text` is the JSON arguments."""

    kind: EventKind
    text: str = ""
    call_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class ModelInput:
    events: list[Event]
    instructions: str = ""
    tool_names: tuple[str, ...] = ()
    tools_json: str = ""  # the offered tool schemas, counted as input tokens
    attached_filenames: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    calls: tuple[ToolCall, ...] = ()
    text: str = ""
    image: bytes | None = None
    filename: str = ""
    cited: bool = True
    error_code: str = ""
    error_message: str = ""
    incomplete_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    # Remote MCP items the turn made (mcp_list_tools, mcp_call, mcp_approval_request), output
    # before its message.
    mcp_items: tuple[dict[str, Any], ...] = ()


def respond(
    inp: ModelInput, step: Step | None, playbook: Sequence[Rule], decided: Outcome | None = None
) -> Outcome:
    """One model turn: one `decided` already (a remote MCP turn), else a scripted step if
    there is one, else the playbook, else a summary of the latest tool outputs, else a plain
    answer."""
    outcome = decided or (_from_step(step) if step else _decide(inp, playbook))
    produced = outcome.text + "".join(c.name + c.arguments for c in outcome.calls)
    produced += "".join(json.dumps(item) for item in outcome.mcp_items)
    return replace(
        outcome,
        input_tokens=count_tokens(_context_text(inp)),
        output_tokens=count_tokens(produced) if produced else 0,
    )


def _from_step(step: Step) -> Outcome:
    build = {
        "calls": lambda: Outcome("calls", calls=tuple(_tool_call(*c) for c in step.tool_calls)),
        "say": lambda: Outcome("text", text=step.text),
        "image": lambda: Outcome(
            "text", text=step.text, image=step.png, filename=step.filename, cited=step.cited
        ),
        "fail": lambda: Outcome("failed", error_code=step.code, error_message=step.message),
        "incomplete": lambda: Outcome(
            "incomplete",
            calls=tuple(_tool_call(*c) for c in step.tool_calls),
            incomplete_reason=step.reason,
        ),
        "expire": lambda: Outcome("expired"),
        "hang": lambda: Outcome("hang"),
    }
    if step.kind not in build:
        raise ValueError(f"step {step.kind!r} is not a model turn")
    return build[step.kind]()


def _decide(inp: ModelInput, playbook: Sequence[Rule]) -> Outcome:
    events = inp.events
    last_user = max((i for i, e in enumerate(events) if e.kind == "user"), default=-1)
    question = events[last_user].text if last_user >= 0 else ""
    since_question = events[last_user + 1 :]
    if events and events[-1].kind == "output":
        return Outcome("text", text=_summarise(events))
    if not any(e.kind == "call" for e in since_question):
        for rule in playbook:
            if rule.matches(question, inp.tool_names):
                return Outcome("calls", calls=tuple(_tool_call(n, a) for n, a in rule.calls))
    if inp.attached_filenames and re.search(r"\bfiles?\b", question, re.IGNORECASE):
        return Outcome("text", text=f"The attached files are: {', '.join(inp.attached_filenames)}.")
    if not any(e.kind == "call" for e in since_question):
        for tool in _offered_functions(inp):
            if asks_for(question, tool):
                arguments = arguments_for(tool.get("parameters") or {}, question)
                return Outcome("calls", calls=(_tool_call(tool["name"], arguments),))
    return Outcome("text", text=f"You said: {_truncate(question, ECHO_LIMIT)}")


def _offered_functions(inp: ModelInput) -> list[dict[str, Any]]:
    """The function tools offered this turn (name, description, parameters), in order."""
    offered = []
    for tool in json.loads(inp.tools_json) if inp.tools_json else []:
        function = tool.get("function", tool)  # Assistants nest the definition
        if tool.get("type") == "function" and function.get("name") in inp.tool_names:
            offered.append(function)
    return offered


def asks_for(question: str, tool: dict[str, Any]) -> bool:
    """Whether the question names the tool (as a word), or speaks of what its description
    says - then only if it quotes the text a tool with text arguments needs (a free-form
    question is not an argument)."""
    text = question.lower()
    name = str(tool["name"]).lower()
    if any(re.search(rf"\b{re.escape(form)}\b", text) for form in (name, name.replace("_", " "))):
        return True
    described = set(_WORD.findall(str(tool.get("description") or "").lower())) - _COMMON_WORDS
    if len(described & set(_WORD.findall(text))) < DESCRIPTION_WORDS_TO_MATCH:
        return False
    properties = (tool.get("parameters") or {}).get("properties") or {}
    takes_text = any(
        isinstance(spec, dict) and spec.get("type") == "string" for spec in properties.values()
    )
    return not takes_text or _QUOTED.search(question) is not None


def arguments_for(schema: dict[str, Any], question: str) -> dict[str, Any]:
    """A value for every property of an object schema (strict tools require them all),
    taken from the question where it says one, else the simplest the schema allows."""
    return _Filler(question, schema.get("$defs", {})).object(schema, expanding=frozenset())


@dataclass(frozen=True)
class _Filler:
    question: str
    defs: dict[str, Any]

    def object(self, schema: dict[str, Any], *, expanding: frozenset[str]) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        return {name: self.value(spec, expanding=expanding) for name, spec in properties.items()}

    def value(self, spec: Any, *, expanding: frozenset[str]) -> Any:  # noqa: PLR0911
        spec = spec if isinstance(spec, dict) else {}
        variants = spec.get("anyOf") or spec.get("oneOf")
        if variants:  # a nullable field: its first variant that is not null, unless recursive
            usable = [
                v for v in variants if v.get("type") != "null" and v.get("$ref") not in expanding
            ]
            spec = usable[0] if usable else {"type": "null"}
        reference = spec.get("$ref")
        if reference is not None:  # a pydantic model's nested model: #/$defs/Name
            if reference in expanding:
                return None
            expanding = expanding | {reference}
            spec = self.defs.get(str(reference).rsplit("/", 1)[-1], {})
        if "const" in spec:
            return spec["const"]
        if "enum" in spec:
            mentioned = [v for v in spec["enum"] if str(v).lower() in self.question.lower()]
            return (mentioned or spec["enum"])[0]
        kind = spec.get("type")
        if isinstance(kind, list):  # ["string", "null"]
            kind = next((k for k in kind if k != "null"), "null")
        if kind in ("null", "boolean"):
            return None if kind == "null" else True
        if kind == "array":
            item = self.value(spec.get("items", {}), expanding=expanding)
            return [item] * int(spec.get("minItems", 0))
        if kind == "object":
            return self.object(spec, expanding=expanding)
        if kind in ("integer", "number"):
            return self.number(spec, integer=kind == "integer")
        return self.text(spec)

    def number(self, spec: dict[str, Any], *, integer: bool) -> float:
        found = _NUMBER.search(self.question)
        value = float(found.group()) if found else float(spec.get("minimum", 1))
        step = 1 if integer else 0.001
        low = max(spec.get("minimum", -math.inf), spec.get("exclusiveMinimum", -math.inf) + step)
        high = min(spec.get("maximum", math.inf), spec.get("exclusiveMaximum", math.inf) - step)
        value = min(max(value, low), high)
        return int(value) if integer else value

    def text(self, spec: dict[str, Any]) -> str:
        formats = {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z"}
        if spec.get("format") in formats:
            return formats[spec["format"]]
        quoted = _QUOTED.search(self.question)
        text = (quoted.group(1) or quoted.group(2)) if quoted else self.question
        return text[: spec.get("maxLength", len(text))]


def _summarise(events: Sequence[Event]) -> str:
    """Describe the outputs answering the latest batch of calls."""
    names = {e.call_id: e.name for e in events if e.kind == "call"}
    last_call = max((i for i, e in enumerate(events) if e.kind == "call"), default=0)
    batch_start = last_call
    while batch_start > 0 and events[batch_start - 1].kind == "call":
        batch_start -= 1
    batch = {e.call_id for e in events[batch_start : last_call + 1]}
    parts = [
        _describe_output(names.get(e.call_id, "a tool"), e.text)
        for e in events[last_call + 1 :]
        if e.kind == "output" and e.call_id in batch
    ]
    return "Here is what I found with " + "; ".join(parts)


def _describe_output(name: str, output: str) -> str:
    try:
        value = json.loads(output)
    except ValueError:
        return f"{name}: {_truncate(output, PREVIEW_LIMIT)}"
    if isinstance(value, dict) and "error" in value:
        return f"{name}: the tool failed with error {json.dumps(value['error'])}"
    rows = value.get("rows") if isinstance(value, dict) else value
    if isinstance(rows, list):
        return f"{name}: {len(rows)} rows — {_truncate(_compact(rows[:3]), PREVIEW_LIMIT)}"
    return f"{name}: {_truncate(_compact(value), PREVIEW_LIMIT)}"


def _tool_call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(call_id=new_id("call_"), name=name, arguments=json.dumps(args))


def _context_text(inp: ModelInput) -> str:
    events = "".join(e.name + e.text for e in inp.events)
    return inp.instructions + events + inp.tools_json


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
