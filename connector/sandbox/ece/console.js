// The ECE sandbox agent console. Polls control/state (relative to this page, so any mount prefix works)
// and drives the agent actions of the control API. Each conversation's forms are built once and only
// their read-only parts are refreshed, so a poll never eats what the agent is typing.
"use strict";

const POLL_MS = 2000;
const cards = new Map(); // conversation id -> {root, refresh(conv, state)}
const rows = new Map(); // entry point id -> {refresh(ep)}
let demoAgents = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function notify(text, isError = false) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.className = isError ? "error" : "";
}

async function post(path, body) {
  const init = { method: "POST" };
  if (body instanceof FormData) init.body = body;
  else {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body || {});
  }
  const answer = await fetch(path, init);
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    notify(`Refused (${answer.status}): ${data.developerMessage || answer.statusText}`, true);
    throw new Error(String(answer.status));
  }
  return data;
}

function act(convId, action, body, done) {
  post(`control/conversations/${encodeURIComponent(convId)}/${action}`, body)
    .then(() => { notify(`Sent ${action.replace("_", " ")}.`); if (done) done(); refresh(); })
    .catch(() => {});
}

function form(label, fields, onsubmit) {
  const f = el("form", { "aria-label": label });
  f.addEventListener("submit", (event) => { event.preventDefault(); onsubmit(f); });
  f.append(...fields);
  return f;
}

function time(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

// -- transcript: what the customer sent (received) and what the agent side emitted (events) ------

function transcriptItems(conv) {
  const files = new Map(conv.attachments.map((a) => [a.id, a]));
  const items = conv.received.map((r) => {
    if (r.kind === "attachment") {
      const file = files.get(r.attachment_id);
      return { at: r.received_at, cls: "customer", text: `Customer sent a file: ${file ? file.name : r.attachment_id}` };
    }
    return { at: r.received_at, cls: "customer", text: `Customer: ${r.content}` };
  });
  for (const e of conv.events) {
    const who = e.sender.user ? e.sender.user.name : "System";
    const kind = e.type.value;
    let text;
    if (kind === "text/plain" || kind === "text/html") text = `${who}: ${e.content}${kind === "text/html" ? " (HTML)" : ""}`;
    else if (kind === "startTyping" || kind === "endTyping") continue;
    else text = `[${kind}] ${e.content}`;
    items.push({ at: e.timeStamp / 1000, cls: e.sender.type === "system" ? "system" : "agent", text });
  }
  return items.sort((a, b) => a.at - b.at);
}

// -- a conversation card --------------------------------------------------------------------------

function buildCard(conv) {
  const heading = el("h3");
  const attributes = el("dl", { class: "attributes" });
  const transcript = el("ol", { class: "transcript", "aria-label": "Transcript" });
  const files = el("ul", { "aria-label": "Files" });
  const accept = el("span");
  const actions = el("fieldset", { class: "actions" }, el("legend", { class: "hint" }, "Agent actions"));

  const reply = el("textarea", { rows: 2, cols: 40, "aria-label": "Reply text", required: true });
  const html = el("input", { type: "checkbox" });
  actions.append(form("Reply", [reply, el("label", {}, html, " HTML"), el("button", { type: "submit" }, "Send reply")], () => {
    act(conv.id, "say", { text: reply.value, html: html.checked }, () => { reply.value = ""; });
  }));
  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) reply.form.requestSubmit();
  });

  actions.append(el("span", {},
    el("button", { type: "button", onclick: () => act(conv.id, "typing", { on: true }) }, "Start typing"), " ",
    el("button", { type: "button", onclick: () => act(conv.id, "typing", { on: false }) }, "Stop typing")));

  const kind = el("select", { "aria-label": "Transfer to" }, el("option", { value: "queue" }, "queue"), el("option", { value: "agent" }, "agent"));
  const target = el("input", { type: "text", "aria-label": "Queue or agent name", placeholder: "name", required: true, size: 12 });
  actions.append(form("Transfer", [kind, target, el("button", { type: "submit" }, "Transfer")], () => {
    act(conv.id, "transfer", { kind: kind.value, name: target.value }, () => { target.value = ""; });
  }));

  const page = el("input", { type: "url", "aria-label": "Page URL", placeholder: "https://…", required: true });
  actions.append(form("Push a page", [page, el("button", { type: "submit" }, "Push page")], () => {
    act(conv.id, "page_push", { url: page.value }, () => { page.value = ""; });
  }));

  const file = el("input", { type: "file", "aria-label": "File to send", required: true });
  actions.append(form("Send a file", [file, el("button", { type: "submit" }, "Send file")], (f) => {
    const data = new FormData();
    data.append("file", file.files[0]);
    act(conv.id, "upload_file", data, () => f.reset());
  }));

  actions.append(el("button", { type: "button", onclick: () => act(conv.id, "complete") }, "Close chat"));

  const root = el("article", { class: "conversation", "aria-label": `Conversation ${conv.id}` },
    heading, accept, attributes, el("h4", {}, "Transcript"), transcript, el("h4", {}, "Files"), files, actions);

  function refresh(c) {
    root.classList.toggle("ended", c.state === "ended");
    heading.replaceChildren(
      `Chat on entry point ${c.entry_point_id} `, el("span", { class: `state ${c.state}` }, c.state),
      c.agent ? ` with ${c.agent.name}` : "", el("small", { class: "hint" }, `  ${c.id}`));

    accept.replaceChildren();
    if (c.state === "queued") {
      for (const agent of demoAgents) {
        accept.append(el("button", { type: "button", onclick: () => act(c.id, "assign", { agent_id: agent.id, agent_name: agent.name }) },
          `Accept as ${agent.name}`), " ");
      }
    }

    const pairs = [["Subject", c.subject], ["Locale", c.locale], ["Started", time(c.started_at)]];
    for (const a of c.customer_attributes) pairs.push([a.name, a.value]);
    for (const a of c.custom_attributes) pairs.push([`custom: ${a.name}`, a.value]);
    attributes.replaceChildren(...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "string" ? v : JSON.stringify(v))]));

    const items = transcriptItems(c);
    transcript.replaceChildren(...items.map((i) => el("li", { class: i.cls }, `${time(i.at)}  ${i.text}`)));
    const typing = c.events.filter((e) => e.type.value === "startTyping" || e.type.value === "endTyping").pop();
    if (typing && typing.type.value === "startTyping") transcript.append(el("li", { class: "system" }, "(agent is typing…)"));

    files.replaceChildren(...c.attachments.map((a) => {
      const item = el("li", {}, a.direction === "customer" ? "From customer: " : "From agent: ",
        el("a", { href: a.url, download: a.name }, a.name), ` (${a.mime_type}, ${a.size} bytes)`);
      if (a.direction === "customer") {
        if (a.decision) item.append(` ${a.decision}`);
        else if (c.state !== "ended") {
          item.append(" ",
            el("button", { type: "button", onclick: () => act(c.id, "accept_attachment", { attachment_id: a.id }) }, "Accept file"), " ",
            el("button", { type: "button", onclick: () => act(c.id, "reject_attachment", { attachment_id: a.id }) }, "Reject file"));
        }
      }
      return item;
    }));
    if (!c.attachments.length) files.append(el("li", { class: "hint" }, "none"));
    actions.disabled = c.state === "ended";
  }

  return { root, refresh };
}

// -- an entry point row ---------------------------------------------------------------------------

function buildRow(ep) {
  const now = el("td");
  const active = el("input", { type: "checkbox" });
  const agents = el("input", { type: "checkbox" });
  const bound = el("input", { type: "checkbox" });
  const capacity = el("input", { type: "number", min: 0 });
  const depth = el("input", { type: "number", min: 0 });
  const wait = el("input", { type: "number", min: 0 });
  let dirty = false;
  const f = form(`Switches of entry point ${ep.id}`, [
    el("label", {}, active, " active"), el("label", {}, agents, " agents available"), el("label", {}, bound, " app bound"),
    el("label", {}, "slots ", capacity), el("label", {}, "queue depth ", depth), el("label", {}, "wait s ", wait),
    el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", onclick: () => save({ bump_last_modified: true }) }, "Bump lastModified"),
  ], () => save({
    active: active.checked, agents_available: agents.checked, bound: bound.checked,
    capacity: Number(capacity.value), queue_depth: Number(depth.value), wait_seconds: Number(wait.value),
  }));
  f.style.flexWrap = "wrap";
  f.addEventListener("input", () => { dirty = true; });

  function save(body) {
    post(`control/entry_points/${encodeURIComponent(ep.id)}`, body)
      .then(() => { dirty = false; notify(`Entry point ${ep.id} saved.`); refresh(); })
      .catch(() => {});
  }

  const root = el("tr", {}, el("th", { scope: "row" }, `${ep.id} ${ep.name}`), now, el("td", {}, f));
  document.getElementById("entry-points").append(root);

  return {
    refresh(e) {
      now.replaceChildren(
        `available: ${e.agents_available}, slots: ${e.slots}, eligibility: ${e.eligibility}, chat allowed: ${e.chat_allowed}, `,
        `depth: ${e.queue_depth}, wait: ${e.wait_seconds}s, active: ${e.active}, bound: ${e.bound}`,
        el("br"), el("small", {}, `lastModified ${e.last_modified}`));
      if (!dirty && !f.contains(document.activeElement)) {
        active.checked = e.active; agents.checked = e.agents_available; bound.checked = e.bound;
        capacity.value = e.capacity; depth.value = e.queue_depth; wait.value = e.wait_seconds;
      }
    },
  };
}

// -- polling --------------------------------------------------------------------------------------

async function refresh() {
  let state;
  try {
    const answer = await fetch("control/state", { headers: { Accept: "application/json" } });
    state = await answer.json();
  } catch (error) {
    notify("The simulator does not answer; is the sandbox running?", true);
    return;
  }
  render(state);
}

function render(state) {
  demoAgents = state.demo_agents;
  const list = document.getElementById("conversations");
  document.getElementById("no-conversations").hidden = state.conversations.length > 0;
  // Newest first: prepend cards as they appear.
  for (const conv of state.conversations) {
    let card = cards.get(conv.id);
    if (!card) {
      card = buildCard(conv);
      cards.set(conv.id, card);
      list.prepend(card.root);
    }
    card.refresh(conv);
  }
  for (const ep of state.entry_points) {
    let row = rows.get(ep.id);
    if (!row) { row = buildRow(ep); rows.set(ep.id, row); }
    row.refresh(ep);
  }
  const f = state.failures;
  document.getElementById("failures-now").textContent =
    `ECE is ${f.down ? "down (" + f.down + ")" : "up"}; injected failures pending: ${f.fail_next_pending}; ` +
    `callback: ${state.callback.url || "not configured"}; events waiting: ${state.emitter.pending}.`;
}

document.getElementById("down-on").addEventListener("click", () => post("control/failures", { down: "503" }).then(refresh, () => {}));
document.getElementById("down-off").addEventListener("click", () => post("control/failures", { down: null }).then(refresh, () => {}));
document.getElementById("expire-tokens").addEventListener("click", () =>
  post("control/failures", { token_expire_all: true }).then(() => { notify("All tokens expired."); refresh(); }, () => {}));

render(JSON.parse(document.getElementById("initial-state").textContent));
setInterval(refresh, POLL_MS);
