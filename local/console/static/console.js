// The local console: plain JavaScript, no build step. It speaks the public HTTP API (through
// the console's /api passage) and the WebSocket protocol of docs/streaming.md; /console/...
// adds what only a local console may see (executions, the model's tool calls).
"use strict";

const $ = (selector) => document.querySelector(selector);
const session = { token: null, streamUrl: null, threadId: null, socket: null };
const TERMINAL = new Set(["completed", "failed", "cancelled", "expired", "incomplete", "timed_out"]);
const runs = new Map(); // run id -> its card and the updates applied to it
let inspected = null; // the run the inspector shows

function element(tag, attributes = {}, ...children) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  made.append(...children);
  return made;
}

function problem(text) { $("#problem").textContent = text || ""; }

async function api(method, path, body) {
  const response = await fetch(`/api${path}`, {
    method,
    headers: { authorization: `Bearer ${session.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(answer?.error?.message || `${method} ${path}: ${response.status}`);
  return answer;
}

// -- signing in --------------------------------------------------------------------------

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const signed = await (await fetch("/console/session", {
      method: "POST", body: JSON.stringify({ user: $("#user").value }),
    })).json();
    Object.assign(session, { token: signed.token, streamUrl: signed.stream_url });
    session.threadId = (await api("POST", "/threads", { purpose: "console" })).id;
    const { assistants } = await api("GET", "/assistants");
    $("#assistant").replaceChildren(...assistants.map((a) => element("option", { value: a.name }, a.display_name)));
    $("#who").textContent = `signed in as ${signed.user}, thread ${session.threadId}`;
    $("#workspace").hidden = false;
    connect();
    await showFiles();
    problem("");
  } catch (error) { problem(error.message); }
});

// -- the stream: updates applied in seq order, each once; resumed after a reconnect ------

function connect() {
  const socket = new WebSocket(`${session.streamUrl}?token=${encodeURIComponent(session.token)}`);
  session.socket = socket;
  socket.addEventListener("open", () => { for (const run of runs.values()) if (!run.done) subscribe(run); });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => { if (session.socket === socket) setTimeout(connect, 1000); });
}

function subscribe(run) {
  if (session.socket?.readyState !== WebSocket.OPEN) return; // sent on open
  session.socket.send(JSON.stringify({ action: "subscribe", thread_id: session.threadId,
                                       run_id: run.id, after: run.seq }));
}

function receive(message) {
  if (message.type === "error") { problem(`${message.code}: ${message.message}`); return; }
  const run = runs.get(message.run_id);
  if (!run || message.type === "subscribed" || message.seq <= run.seq) return;
  run.waiting.set(message.seq, message);
  while (run.waiting.has(run.seq + 1)) {
    const next = run.waiting.get(run.seq + 1);
    run.waiting.delete(next.seq);
    run.seq = next.seq;
    apply(run, next);
  }
  clearTimeout(run.gapTimer); // a gap not filled soon: ask for what is missing
  if (run.waiting.size) run.gapTimer = setTimeout(() => subscribe(run), 2000);
}

function apply(run, update) {
  switch (update.type) {
    case "run.status":
      setStatus(run, update.status, update.reason);
      break;
    case "text.delta":
      if (run.done) break; // the final view has the whole answer
      run.card.answer.textContent += update.delta;
      // Whether the text came before the run ended (the stream's order says so).
      if (!TERMINAL.has(run.card.status.dataset.status)) run.card.root.dataset.textBeforeEnd = "true";
      break;
    case "tool.calls":
      for (const call of update.calls) {
        const approval = call.approval ? `, ${call.approval}` : "";
        run.card.tools.append(element("li", { class: "tool", "data-tool": call.name },
          `${call.name} (${Math.round(call.duration_ms)} ms${approval}${call.is_error ? ", error" : ""})`));
      }
      break;
    case "approval.required":
      for (const call of update.calls) run.card.root.append(approvalCard(run, call));
      break;
    case "run.view":
      finish(run, update.run);
      break;
  }
  if (inspected === run) inspect(run);
}

function setStatus(run, status, reason) {
  run.card.status.textContent = reason ? `${status}: ${reason}` : status;
  run.card.status.dataset.status = status;
}

function approvalCard(run, call) {
  const card = element("div", { class: "approval", "data-call-id": call.call_id },
    `${call.tool} asks for approval`, element("code", {}, call.arguments));
  for (const approve of [true, false]) {
    const button = element("button", { class: approve ? "approve" : "deny", type: "button" },
      approve ? "Approve" : "Deny");
    button.addEventListener("click", async () => {
      try {
        await api("POST", `/threads/${session.threadId}/runs/${run.id}/approvals`,
                  { decisions: [{ call_id: call.call_id, approve }] });
        card.replaceChildren(`${call.name}: ${approve ? "approved" : "denied"}`);
      } catch (error) { problem(error.message); }
    });
    card.append(button);
  }
  return card;
}

async function finish(run, view) {
  run.done = true;
  run.view = view;
  setStatus(run, view.status, view.reason);
  if (view.output_text) run.card.answer.textContent = view.output_text;
  const withLinks = await api("GET", `/threads/${session.threadId}/runs/${run.id}`);
  for (const file of withLinks.files) {
    run.card.root.append(element("a", { href: file.url, class: "download" }, file.filename));
  }
  if (inspected === run) inspect(run);
}

// -- asking ------------------------------------------------------------------------------

$("#ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("#message").value.trim();
  if (!message) return;
  try {
    const accepted = await api("POST", `/threads/${session.threadId}/runs`,
                               { message, assistant: $("#assistant").value });
    $("#message").value = "";
    const run = newRun(accepted.id, message);
    subscribe(run);
    inspect(run);
  } catch (error) { problem(error.message); }
});

function newRun(id, message) {
  const status = element("span", { class: "status" }, "queued");
  const answer = element("div", { class: "answer" });
  const tools = element("ul", { class: "tools" });
  const root = element("article", { class: "run", "data-run-id": id },
    element("div", { class: "question" }, message, " ", status), tools, answer);
  root.addEventListener("click", () => inspect(run));
  $("#runs").append(root);
  const run = { id, seq: 0, waiting: new Map(), done: false, view: null, card: { root, status, answer, tools } };
  runs.set(id, run);
  return run;
}

// -- uploads: the presigned POST, straight from the browser to the bucket ------------------

$("#file").addEventListener("change", async () => {
  const file = $("#file").files[0];
  if (!file) return;
  try {
    const ticket = await api("POST", `/threads/${session.threadId}/files`, {
      filename: file.name, content_type: file.type || "application/octet-stream", size: file.size,
    });
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
    form.append("file", file);
    // The bucket's answer carries no CORS headers here, so it is not read: the file's status
    // (below) says how the upload went.
    await fetch(ticket.url, { method: "POST", body: form, mode: "no-cors" });
    await showFiles(ticket.upload_id);
  } catch (error) { problem(error.message); }
});

async function showFiles(settling) {
  for (let look = 0; look < 60; look++) {
    const { files } = await api("GET", `/threads/${session.threadId}/files`);
    $("#files").replaceChildren(...files.map((file) => element("li",
      { class: "file", "data-status": file.status, "data-reason": file.reason || "" }, file.filename)));
    const pending = files.find((file) => file.id === settling && file.status === "pending");
    if (!pending) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

// -- the inspector: state machine graphs, tool calls, tokens and timings --------------------

async function inspect(run) {
  inspected = run;
  $("#inspected").textContent = run.id;
  const response = await fetch(`/console/threads/${session.threadId}/runs/${run.id}`,
                               { headers: { authorization: `Bearer ${session.token}` } });
  if (!response.ok || inspected !== run) return;
  const detail = await response.json();
  $("#graphs").replaceChildren(...detail.executions.map(graph));
  $("#calls").replaceChildren(...detail.calls.map((call) => element("li", { class: "call" },
    call.name, element("pre", {}, `arguments: ${call.arguments}`),
    element("pre", {}, `result: ${call.output ?? "(not yet)"}`))));
  showStats(run);
  clearTimeout(run.inspectTimer);
  const going = detail.executions.some((execution) => execution.status === "RUNNING");
  if (!run.done || going) run.inspectTimer = setTimeout(() => inspected === run && inspect(run), 700);
}

function showStats(run) {
  const view = run.view;
  const rows = view ? [
    ["status", view.status], ["input tokens", view.usage.input_tokens],
    ["output tokens", view.usage.output_tokens], ["total tokens", view.usage.total_tokens],
    ["duration", `${view.duration_seconds ?? "-"} s`], ["tool rounds", view.tool_rounds],
    ...view.timeline.map((entry) => [entry.step, `${entry.at} (${entry.tier}, ${entry.checks} checks)`]),
  ] : [["status", run.card.status.textContent]];
  $("#stats").replaceChildren(...rows.flatMap(([term, value]) =>
    [element("dt", {}, term), element("dd", {}, String(value))]));
}

const SVG = "http://www.w3.org/2000/svg";

function svgElement(tag, attributes = {}, ...children) {
  const made = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  made.append(...children);
  return made;
}

// States in layers by their distance from StartAt; each lit once entered, the last one
// entered (while the execution runs) filled.
function graph(execution) {
  const layer = new Map([[execution.start_at, 0]]);
  const queue = [execution.start_at];
  while (queue.length) {
    const name = queue.shift();
    for (const next of execution.states[name]?.next || []) {
      if (!layer.has(next)) { layer.set(next, layer.get(name) + 1); queue.push(next); }
    }
  }
  const rows = [];
  for (const [name, depth] of layer) (rows[depth] ||= []).push(name);
  const width = 130, height = 26, gapX = 10, gapY = 22;
  const columns = Math.max(...rows.map((row) => row.length));
  const at = new Map();
  rows.forEach((row, depth) => row.forEach((name, index) => at.set(name, {
    x: (columns - row.length) * (width + gapX) / 2 + index * (width + gapX) + 5,
    y: depth * (height + gapY) + 20,
  })));
  const entered = new Set(execution.entered.map((entry) => entry.state));
  const current = execution.status === "RUNNING" ? execution.entered.at(-1)?.state : null;
  const svg = svgElement("svg", {
    viewBox: `0 0 ${columns * (width + gapX) + 10} ${rows.length * (height + gapY) + 30}`,
    "data-machine": execution.machine, "data-status": execution.status,
  }, svgElement("defs", {}, svgElement("marker", { id: "arrow", viewBox: "0 0 6 6", refX: 6, refY: 3,
    markerWidth: 6, markerHeight: 6, orient: "auto" }, svgElement("path", { d: "M0,0 L6,3 L0,6 z", fill: "#c3c9d4" }))),
  svgElement("text", { x: 5, y: 12, "font-size": 11 }, `${execution.machine}: ${execution.status}`));
  for (const [name, from] of at) {
    for (const next of execution.states[name].next) {
      const to = at.get(next);
      if (!to) continue;
      const down = to.y > from.y;
      svg.append(svgElement("path", { class: "edge", d: down
        ? `M${from.x + width / 2},${from.y + height} L${to.x + width / 2},${to.y}`
        : `M${from.x + width},${from.y + height / 2} C${from.x + width + 30},${from.y} ${to.x + width + 30},${to.y + height} ${to.x + width},${to.y + height / 2}` }));
    }
  }
  for (const [name, { x, y }] of at) {
    const classes = ["state", entered.has(name) ? "entered" : "", name === current ? "current" : ""];
    svg.append(svgElement("g", { class: classes.join(" ").trim(), "data-state": name },
      svgElement("rect", { x, y, width, height }),
      svgElement("text", { x: x + width / 2, y: y + height / 2 + 3 }, name)));
  }
  return svg;
}
