// The agent desktop (docs/hybrid.md, "The agent desktop"): log in, READY / NOT READY, offers with a
// countdown, chats side by side, live by Server-Sent Events with a long-poll fallback. No framework:
// the page's HTML holds every control and <template>; this file fills them in, always as text.
(function () {
  "use strict";

  const body = document.body;
  const BASE = body.dataset.base || "/agent";
  const EMBEDDED = body.dataset.embedded === "1";
  const EVENT_TYPES = ["chat_offered", "offer_withdrawn", "chat_assigned", "customer_message", "customer_typing",
    "chat_closed", "chat_transferred", "state_changed", "note"];
  const TYPING_IDLE_MS = 3000;
  const CUSTOMER_TYPING_MS = 20000;
  const POLL_WAIT = 25;
  const BREAK_MS = 5000; // a stream away longer than this may have missed what it cannot resume
  const BUSY_MS = 5000; // between long polls the server answered at once, empty
  const REFRESH_MS = 30000; // the state is read again this often (voice calls start and end unannounced)
  const STATE_LABELS = { READY: "Ready", NOT_READY: "Not ready", BUSY: "Busy: no room for more chats",
    INTERRUPTED: "Interrupted: on a call" };
  const CHANNELS = { sms: "SMS", whatsapp: "WhatsApp", messenger: "Messenger", apple: "Apple Messages",
    inapp: "In-app", webchat: "Web chat" };
  const CLOSED_BY = { customer: "The customer left the chat.", agent: "You closed this chat.",
    system: "The chat was closed by the system.",
    inactivity: "The customer wrote nothing for a while: the chat was closed." };
  const WITHDRAWN = { rejected: "rejected", timeout: "not answered in time" };

  const $ = (id) => document.getElementById(id);
  const S = {
    csrf: "",
    bearer: "", // the gadget's token (from the URL's fragment) when its frame gets no cookie
    agent: null,
    cursor: "",
    skew: 0, // server clock − this clock, in seconds
    offers: new Map(), // chat_id → {chat, node, deadline}
    chats: new Map(), // chat_id → {chat, node, tab, seen:Set, unread, typingOn, typingTimer, customerTimer, ended}
    current: null, // the chat open on a narrow screen
    source: null,
    generation: 0, // bumped to stop the running connection (stream or poll loop)
    abort: null,
    started: false,
    shortcuts: true,
    nextId: 0,
    stateAt: 0, // when the last state_changed event came
  };

  // -- talking to the API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function metaToken(doc) {
    const meta = (doc || document).querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function noteClock(response) {
    const date = response.headers.get("Date");
    const server = date ? Date.parse(date) : NaN;
    if (!Number.isNaN(server)) S.skew = (server - Date.now()) / 1000;
  }

  async function api(path, options = {}) {
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    let payload;
    if (S.bearer) headers.Authorization = `Bearer ${S.bearer}`;
    else if (method !== "GET") headers["X-CSRF-Token"] = S.csrf;
    if (options.form) payload = options.form;
    else if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(BASE + path, { method, headers, body: payload, credentials: "same-origin", signal: options.signal });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError("The connector cannot be reached.", 0, "offline");
    }
    noteClock(response);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new ApiError(data.message || response.statusText || "Request failed", response.status, data.error);
      if (response.status === 401 && !options.loginCall) sessionEnded();
      else if (response.status === 401 && S.bearer) forgetBearer(); // the gadget's token is no longer good
      throw error;
    }
    return data;
  }

  // -- small helpers --------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clone(templateId) {
    const fragment = $(templateId).content.cloneNode(true);
    const prefix = `d${++S.nextId}-`;
    fragment.querySelectorAll("[data-id]").forEach((n) => { n.id = prefix + n.dataset.id; });
    fragment.querySelectorAll("[data-for]").forEach((n) => { n.htmlFor = prefix + n.dataset.for; });
    fragment.querySelectorAll("[data-labelledby]").forEach((n) => n.setAttribute("aria-labelledby", prefix + n.dataset.labelledby));
    fragment.querySelectorAll("[data-describedby]").forEach((n) => n.setAttribute("aria-describedby", prefix + n.dataset.describedby));
    return fragment.firstElementChild;
  }

  const role = (node, name) => node.querySelector(`[data-role="${name}"]`);
  const customerName = (chat) => (chat.customer && (chat.customer.name || chat.customer.id)) || "the customer";
  const channelName = (channel) => CHANNELS[channel] || channel || "chat";
  const clock = (at) => new Date(at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const day = (at) => new Date(at * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  const serverNow = () => Date.now() / 1000 + S.skew;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function fillWho(node, chat) {
    node.querySelectorAll("[data-who]").forEach((n) => { n.textContent = ` with ${customerName(chat)}`; });
  }

  function isField(node) {
    if (!node || !node.tagName) return false;
    const tag = node.tagName.toLowerCase();
    return tag === "textarea" || tag === "select" || node.isContentEditable ||
      (tag === "input" && !["button", "submit", "checkbox", "radio", "reset"].includes(node.type));
  }

  // Polite: what happened (withdrawn offers, transfers, errors); stays a few seconds on screen.
  function notice(text, kind) {
    const box = $("notices");
    const line = el("p", kind || "", text);
    box.appendChild(line);
    while (box.childElementCount > 2) box.firstElementChild.remove();
    setTimeout(() => line.remove(), kind === "bad" ? 12000 : 6000);
  }

  // Assertive: a new offer, whatever the agent is doing.
  function announce(text) {
    const box = $("announce");
    box.textContent = "";
    setTimeout(() => { box.textContent = text; }, 50);
  }

  function failed(what, error) {
    if (error && error.name === "AbortError") return;
    if (error && error.status === 401) return; // the login form says it
    notice(`${what}: ${error ? error.message : "failed"}`, "bad");
  }

  // -- views: loading, login, desk ------------------------------------------------------------------

  function showLogin(message) {
    stopLive();
    clearDesk();
    S.started = false;
    $("loading").hidden = true;
    $("desk").hidden = true;
    $("who").hidden = true;
    const view = $("login-view");
    if (!view) { // embedded with a session when the page was made: the gadget logs in again
      $("loading").hidden = false;
      $("loading").textContent = message ? `${message} Reload the gadget.` : "Your session has ended: reload the gadget.";
      return;
    }
    view.hidden = false;
    $("login-error").textContent = message || "";
    $("login-password").value = "";
    $("login-name").focus();
  }

  function sessionEnded() {
    forgetBearer();
    if (S.started) showLogin("Your session has ended: log in again.");
  }

  function showDesk(me) {
    $("loading").hidden = true;
    const view = $("login-view");
    if (view) view.hidden = true;
    $("desk").hidden = false;
    $("who").hidden = EMBEDDED;
    S.started = true;
    applyMe(me);
    startLive();
  }

  function clearDesk() {
    for (const id of Array.from(S.offers.keys())) removeOffer(id);
    for (const id of Array.from(S.chats.keys())) removeChat(id);
    S.agent = null;
    S.cursor = "";
  }

  async function login(event) {
    event.preventDefault();
    const name = $("login-name").value.trim();
    const password = $("login-password").value;
    if (!name || !password) {
      $("login-error").textContent = "Give your login and your password.";
      (name ? $("login-password") : $("login-name")).focus();
      return;
    }
    const button = $("login-submit");
    button.disabled = true;
    $("login-error").textContent = "";
    try {
      const answer = await api("/login", { method: "POST", body: { login: name, password }, loginCall: true });
      forgetBearer(); // from now on the cookie of this login
      S.csrf = answer.csrf_token || (await tokenFromPage()) || "";
      remember();
      const me = await api("/api/me");
      showDesk(me);
      $("main").focus();
    } catch (error) {
      const message = error.status === 401 || error.status === 403
        ? "Wrong login or password." : error.message;
      $("login-error").textContent = message;
      $("login-password").focus();
    } finally {
      button.disabled = false;
    }
  }

  // The login answer has no token: the page, fetched again with the new session, carries it.
  async function tokenFromPage() {
    try {
      const response = await fetch(window.location.pathname + window.location.search, { credentials: "same-origin" });
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      return metaToken(doc);
    } catch (error) {
      return "";
    }
  }

  // The Finesse gadget opens `/agent/?embedded=1#token=<token>` where its frame gets no cookie: the
  // token is taken out of the address at once and kept for this frame only.
  function takeBearer() {
    const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (match) {
      S.bearer = decodeURIComponent(match[1]);
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      try { sessionStorage.setItem("agent-desktop-token", S.bearer); } catch (error) { /* private mode */ }
    } else if (EMBEDDED) {
      try { S.bearer = sessionStorage.getItem("agent-desktop-token") || ""; } catch (error) { /* private mode */ }
    }
  }

  function forgetBearer() {
    S.bearer = "";
    try { sessionStorage.removeItem("agent-desktop-token"); } catch (error) { /* private mode */ }
  }

  // A file link for a page without a cookie: fetched with the token, handed over as a download.
  async function bearerDownload(event) {
    event.preventDefault();
    const link = event.currentTarget;
    try {
      const response = await fetch(link.href, { headers: { Authorization: `Bearer ${S.bearer}` } });
      if (!response.ok) throw new ApiError(`the file could not be fetched (HTTP ${response.status})`, response.status);
      const url = URL.createObjectURL(await response.blob());
      const save = el("a");
      save.href = url;
      save.download = link.getAttribute("download") || "file";
      document.body.appendChild(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      failed("File not opened", error);
    }
  }

  function remember() {
    try { sessionStorage.setItem("agent-desktop-csrf", S.csrf); } catch (error) { /* private mode */ }
  }

  function remembered() {
    try { return sessionStorage.getItem("agent-desktop-csrf") || ""; } catch (error) { return ""; }
  }

  async function logout() {
    try {
      await api("/logout", { method: "POST", loginCall: true });
    } catch (error) {
      /* logged out on this side whatever the answer */
    }
    try { sessionStorage.removeItem("agent-desktop-csrf"); } catch (error) { /* private mode */ }
    S.csrf = "";
    forgetBearer();
    showLogin("You are logged out.");
  }

  // -- the agent's state ----------------------------------------------------------------------------

  // `asked`: when the answer was asked for; what came by event since then stays whatever it says.
  function applyMe(me, asked) {
    const previous = S.agent;
    S.agent = me;
    if (previous && asked && asked < S.stateAt) { // a state_changed came after this was read: it wins
      if (me.chat_state !== previous.chat_state) {
        me.chat_state = previous.chat_state;
        me.reason = previous.reason;
      }
      me.voice_state = previous.voice_state;
    }
    if (me.csrf_token) S.csrf = me.csrf_token;
    $("agent-name").textContent = me.name || me.login || me.agent_id || "";
    paintState();
    const offered = new Set();
    const active = new Set();
    for (const chat of me.chats || []) {
      if (chat.state === "offered") {
        offered.add(chat.chat_id);
        addOffer(chat, null);
      } else if (chat.state === "active") {
        active.add(chat.chat_id);
        removeOffer(chat.chat_id);
        openChat(chat, false);
      }
    }
    const stale = (entry) => !asked || entry.addedAt < asked;
    for (const [id, offer] of Array.from(S.offers)) if (!offered.has(id) && stale(offer)) removeOffer(id);
    for (const [id, entry] of S.chats) {
      if (!active.has(id) && !entry.ended && stale(entry)) endChat(id, "This chat has ended.");
    }
    paintCount();
  }

  async function refreshMe(reloadTranscripts) {
    const asked = Date.now();
    try {
      applyMe(await api("/api/me"), asked);
      if (reloadTranscripts) for (const [id, entry] of S.chats) if (!entry.ended) loadChat(id);
    } catch (error) {
      failed("Could not refresh your state", error);
    }
  }

  function paintState() {
    const state = (S.agent && S.agent.chat_state) || "";
    const pill = $("chat-state");
    pill.dataset.state = state;
    pill.textContent = STATE_LABELS[state] || state || "—";
    const why = S.agent && S.agent.reason;
    const reasons = $("reason");
    if (state === "NOT_READY" && why && Array.from(reasons.options).some((o) => o.value === why)) reasons.value = why;
    $("chat-reason").textContent = state === "NOT_READY" && why ? (why === "RONA" ? "(an offer rang out)" : `(${why})`) : "";
    const voice = S.agent ? S.agent.voice_state : null;
    $("voice-state").textContent = voice ? voice.replace(/_/g, " ").toLowerCase() : "not on Finesse";
    $("go-ready").setAttribute("aria-pressed", String(state !== "NOT_READY" && state !== ""));
    $("go-not-ready").setAttribute("aria-pressed", String(state === "NOT_READY"));
    $("blend-notice").textContent = state === "INTERRUPTED" ? "On a call: no chat offers until it ends" : "";
  }

  function paintCount() {
    const open = Array.from(S.chats.values()).filter((c) => !c.ended).length;
    $("chat-count").textContent = S.agent && S.agent.max_chats ? `${open} of ${S.agent.max_chats}` : String(open);
    $("no-chats").hidden = S.chats.size > 0;
    $("no-offers").hidden = S.offers.size > 0;
  }

  async function setState(ready) {
    const body = { state: ready ? "READY" : "NOT_READY" };
    if (!ready) body.reason = $("reason").value;
    const buttons = [$("go-ready"), $("go-not-ready")];
    buttons.forEach((b) => { b.disabled = true; });
    const asked = Date.now();
    try {
      const me = await api("/api/me/state", { method: "PUT", body });
      if (me && me.chat_state) applyMe(me, asked);
      else await refreshMe(false);
      notice(ready ? "You are ready for chats." : `You are not ready (${body.reason}).`);
    } catch (error) {
      failed("Could not change your state", error);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // -- offers ---------------------------------------------------------------------------------------

  function addOffer(chat, at) {
    if (S.offers.has(chat.chat_id) || S.chats.has(chat.chat_id)) return;
    const node = clone("offer-template");
    node.dataset.chat = chat.chat_id;
    role(node, "name").textContent = customerName(chat);
    role(node, "channel").textContent = channelName(chat.channel);
    role(node, "queue").textContent = chat.queue || "";
    fillWho(node, chat);
    // The deadline on this clock (the server's, from its Date header); the bar from the offer's start.
    const expires = chat.offer_expires_at;
    const left = expires ? expires - serverNow() : 0;
    const deadline = expires ? Date.now() + left * 1000 : 0;
    const total = expires ? Math.max(1, left, at ? expires - at : 0) : 0;
    node.querySelector('[data-action="accept"]').addEventListener("click", () => accept(chat.chat_id));
    node.addEventListener("keydown", (event) => { // Enter or Space on the card itself: to its Accept button
      if (event.target === node && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        node.querySelector('[data-action="accept"]').focus();
      }
    });
    node.querySelector('[data-action="reject"]').addEventListener("click", () => reject(chat.chat_id));
    $("offers").appendChild(node);
    S.offers.set(chat.chat_id, { chat, node, deadline, total, addedAt: Date.now() });
    tick();
    paintCount();
    announce(`New chat offer from ${customerName(chat)}, ${channelName(chat.channel)}, queue ${chat.queue}.` +
      (S.shortcuts ? " Press O to go to it, A to accept." : ""));
  }

  function removeOffer(chatId) {
    const offer = S.offers.get(chatId);
    if (!offer) return;
    const hadFocus = offer.node.contains(document.activeElement);
    offer.node.remove();
    S.offers.delete(chatId);
    paintCount();
    if (hadFocus && !focusOffers()) focusHeading("offers-heading");
  }

  function tick() {
    for (const offer of S.offers.values()) {
      const left = role(offer.node, "left");
      const bar = role(offer.node, "bar");
      if (!offer.deadline) {
        left.textContent = "Waiting for you";
        continue;
      }
      const seconds = Math.max(0, Math.round((offer.deadline - Date.now()) / 1000));
      left.textContent = seconds > 0 ? `${seconds} s left to accept` : "Expiring…";
      bar.style.width = `${Math.min(100, (100 * seconds) / offer.total)}%`;
    }
  }

  async function accept(chatId) {
    const offer = S.offers.get(chatId);
    if (!offer) return;
    offer.node.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const chat = await api(`/api/chats/${encodeURIComponent(chatId)}/accept`, { method: "POST" });
      removeOffer(chatId);
      openChat(chat && chat.chat_id ? chat : { ...offer.chat, state: "active" }, true); // focus: its message box
    } catch (error) {
      if (error.code === "already_accepted") {
        removeOffer(chatId);
        openChat({ ...offer.chat, state: "active" }, true);
        return;
      }
      offer.node.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      if (error.status === 409 || error.status === 404) {
        removeOffer(chatId);
        notice(`The offer from ${customerName(offer.chat)} is gone: ${error.message}.`);
      } else failed("Could not accept", error);
    }
  }

  async function reject(chatId) {
    const offer = S.offers.get(chatId);
    if (!offer) return;
    try {
      await api(`/api/chats/${encodeURIComponent(chatId)}/reject`, { method: "POST" });
      removeOffer(chatId);
      notice(`You rejected the chat from ${customerName(offer.chat)}.`);
    } catch (error) {
      if (error.status === 409 || error.status === 404) removeOffer(chatId);
      failed("Could not reject", error);
    }
  }

  // Where the focus goes when what had it is gone: the section's heading, never the page's top.
  function focusHeading(id) {
    const heading = $(id);
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }

  function focusOffers() {
    const first = $("offers").firstElementChild;
    if (first) first.focus();
    return Boolean(first);
  }

  // -- chats ----------------------------------------------------------------------------------------

  function openChat(chat, focus) {
    let entry = S.chats.get(chat.chat_id);
    if (entry) {
      entry.chat = { ...entry.chat, ...chat };
      if (focus) showChat(chat.chat_id, true);
      return entry;
    }
    const node = clone("chat-template");
    node.dataset.chat = chat.chat_id;
    const tab = clone("tab-template");
    entry = { chat, node, tab, seen: new Set(), unread: 0, typingOn: false, typingTimer: 0, customerTimer: 0, ended: false,
      addedAt: Date.now() };
    S.chats.set(chat.chat_id, entry);
    paintChatHead(entry);
    wireChat(entry);
    tab.querySelector("button").addEventListener("click", () => showChat(chat.chat_id, true));
    $("chat-tabs").appendChild(tab);
    $("chats").appendChild(node);
    if (focus || !S.current || !S.chats.has(S.current)) showChat(chat.chat_id, focus);
    paintTabs();
    paintCount();
    loadChat(chat.chat_id);
    return entry;
  }

  function paintChatHead(entry) {
    const { chat, node, tab } = entry;
    role(node, "name").textContent = customerName(chat);
    role(node, "channel").textContent = channelName(chat.channel);
    role(node, "queue").textContent = chat.queue || "";
    const since = role(node, "since");
    if (chat.started_at) {
      since.textContent = clock(chat.started_at);
      since.dateTime = new Date(chat.started_at * 1000).toISOString();
    }
    fillWho(node, chat);
    role(tab, "name").textContent = customerName(chat);
    const customer = chat.customer || {};
    const details = { Name: customer.name, "Customer id": customer.id, Channel: channelName(chat.channel), Locale: customer.locale };
    const shown = { name: customer.name, locale: customer.locale, user_id: customer.id };
    for (const [key, value] of Object.entries(customer.details || {})) {
      if (shown[key] !== undefined && shown[key] === value) continue; // said above already
      details[humanize(key)] = value;
    }
    pairs(role(node, "details"), details, "No details.");
    pairs(role(node, "attributes"), chat.attributes || {}, "None.");
  }

  const humanize = (key) => {
    const words = String(key).replace(/[_.]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  };

  function pairs(box, values, empty) {
    box.textContent = "";
    const shown = Object.entries(values).filter(([, v]) => v !== undefined && v !== null && v !== "");
    if (!shown.length) {
      box.appendChild(el("p", "muted", empty));
      return;
    }
    const list = el("dl", "pairs");
    for (const [key, value] of shown) {
      list.appendChild(el("dt", "", key));
      list.appendChild(el("dd", "", typeof value === "object" ? JSON.stringify(value) : value));
    }
    box.appendChild(list);
  }

  async function loadChat(chatId) {
    const entry = S.chats.get(chatId);
    if (!entry) return;
    try {
      const chat = await api(`/api/chats/${encodeURIComponent(chatId)}`);
      if (S.chats.get(chatId) !== entry) return;
      const { transcript, earlier, ...view } = chat;
      entry.chat = { ...entry.chat, ...view };
      paintChatHead(entry);
      for (const item of transcript || []) addMessage(entry, item, false);
      const list = role(entry.node, "earlier");
      list.textContent = "";
      for (const old of earlier || []) {
        const parts = [day(old.started_at), `queue ${old.queue}`];
        if (old.closed_by) parts.push(`closed by ${old.closed_by}`);
        if (old.wrap_up) parts.push(`wrap-up: ${old.wrap_up}`);
        list.appendChild(el("li", "", parts.join(" · ")));
      }
      list.hidden = !list.childElementCount;
      role(entry.node, "no-earlier").hidden = list.childElementCount > 0;
      if (view.state === "closed" && !entry.ended) endChat(chatId, CLOSED_BY[view.closed_by] || "This chat has ended.");
    } catch (error) {
      if (error.status === 404) endChat(chatId, "This chat is no longer yours.");
      else failed(`Could not load the chat with ${customerName(entry.chat)}`, error);
    } finally {
      role(entry.node, "transcript").setAttribute("aria-busy", "false");
    }
  }

  function addMessage(entry, item, live) {
    const key = item.message_id;
    if (key && entry.seen.has(key)) return;
    if (key) entry.seen.add(key);
    const from = item.from || "system";
    const li = el("li", `msg ${from}`);
    const who = from === "agent" ? (item.agent && S.agent && item.agent !== S.agent.name ? item.agent : "You")
      : from === "customer" ? customerName(entry.chat) : "Note";
    const label = el("span", "from", `${who}${item.at ? ` · ${clock(item.at)}` : ""}`);
    li.appendChild(label);
    if (item.text) li.appendChild(el("p", "text", item.text));
    const attachments = item.attachments || [];
    if (attachments.length) {
      const files = el("ul");
      for (const file of attachments) {
        const row = el("li");
        if (file.url && !file.refused) {
          const link = el("a", "", file.name || "file");
          link.href = file.url.includes("/api/files/") && !file.url.includes("?")
            ? `${file.url}?chat=${encodeURIComponent(entry.chat.chat_id)}` : file.url; // closed chats' files too
          link.setAttribute("download", file.name || "");
          link.target = "_blank";
          link.rel = "noopener";
          if (S.bearer) link.addEventListener("click", bearerDownload);
          row.appendChild(link);
          if (file.size) row.appendChild(document.createTextNode(` (${size(file.size)})`));
        } else row.textContent = `${file.name || "A file"}: not relayed${file.refused ? ` (${file.refused})` : ""}`;
        files.appendChild(row);
      }
      li.appendChild(files);
    }
    const list = role(entry.node, "transcript");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(li);
    if (atBottom || !live || from === "agent") list.scrollTop = list.scrollHeight;
    if (live && from === "customer" && S.current !== entry.chat.chat_id) {
      entry.unread += 1;
      paintTabs();
    }
  }

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function showChat(chatId, focus) {
    const entry = S.chats.get(chatId);
    if (!entry) return;
    S.current = chatId;
    entry.unread = 0;
    for (const other of S.chats.values()) other.node.classList.toggle("current", other === entry);
    paintTabs();
    if (focus) {
      const box = role(entry.node, "message");
      if (!entry.ended && !box.disabled) box.focus();
      else entry.node.focus();
    }
  }

  function paintTabs() {
    let n = 0;
    for (const [id, entry] of S.chats) {
      n += 1;
      const button = entry.tab.querySelector("button");
      button.setAttribute("aria-current", String(id === S.current));
      role(entry.tab, "unread").textContent = entry.unread ? String(entry.unread) : "";
      button.setAttribute("aria-label",
        `${n}. ${customerName(entry.chat)}${entry.ended ? ", ended" : ""}${entry.unread ? `, ${entry.unread} new` : ""}`);
    }
  }

  function endChat(chatId, why) {
    const entry = S.chats.get(chatId);
    if (!entry || entry.ended) return;
    entry.ended = true;
    stopTyping(entry, false);
    clearTimeout(entry.customerTimer);
    role(entry.node, "typing").textContent = "";
    entry.node.classList.add("ended");
    role(entry.node, "ended").textContent = why;
    entry.node.querySelectorAll("form textarea, form input, form button").forEach((n) => { n.disabled = true; });
    entry.node.querySelectorAll("form, details.more").forEach((n) => { n.hidden = true; }); // nothing left to do
    const dismiss = role(entry.node, "dismiss");
    dismiss.hidden = false;
    paintTabs();
    paintCount();
  }

  function removeChat(chatId) {
    const entry = S.chats.get(chatId);
    if (!entry) return;
    const hadFocus = entry.node.contains(document.activeElement);
    stopTyping(entry, false);
    clearTimeout(entry.customerTimer);
    entry.node.remove();
    entry.tab.remove();
    S.chats.delete(chatId);
    if (S.current === chatId) {
      S.current = null;
      const next = S.chats.keys().next();
      if (!next.done) showChat(next.value, false);
    }
    paintTabs();
    paintCount();
    if (hadFocus) {
      const current = S.current && S.chats.get(S.current);
      if (current) current.node.focus();
      else focusHeading("chats-heading");
    }
  }

  function wireChat(entry) {
    const { node } = entry;
    const chatId = entry.chat.chat_id;
    const box = role(node, "message");
    const composer = role(node, "composer");

    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      } else if (event.key === "Escape") {
        event.preventDefault();
        node.focus();
      }
    });
    box.addEventListener("input", () => {
      if (!box.value.trim()) return;
      if (!entry.typingOn) {
        entry.typingOn = true;
        typing(chatId, true);
      }
      clearTimeout(entry.typingTimer);
      entry.typingTimer = setTimeout(() => stopTyping(entry, true), TYPING_IDLE_MS);
    });
    composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = box.value;
      if (!text.trim() || entry.ended) return;
      stopTyping(entry, true);
      box.readOnly = true;
      try {
        const answer = await api(`/api/chats/${encodeURIComponent(chatId)}/messages`, { method: "POST", body: { text } });
        addMessage(entry, { message_id: answer.message_id, at: serverNow(), from: "agent", text }, true);
        box.value = "";
      } catch (error) {
        failed("Not sent", error);
      } finally {
        box.readOnly = false;
        box.focus();
      }
    });

    const fileForm = role(node, "file-form");
    fileForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = role(node, "file");
      if (!input.files || !input.files.length) {
        notice("Choose a file first.", "bad");
        input.focus();
        return;
      }
      const form = new FormData();
      form.append("file", input.files[0]);
      const button = fileForm.querySelector("button");
      button.disabled = true;
      try {
        await api(`/api/chats/${encodeURIComponent(chatId)}/messages`, { method: "POST", form });
        notice(`Sent ${input.files[0].name}.`);
        input.value = "";
        loadChat(chatId); // the transcript has the file's link
      } catch (error) {
        failed("File not sent", error);
      } finally {
        button.disabled = false;
      }
    });

    role(node, "transfer-queue").addEventListener("submit", (event) => {
      event.preventDefault();
      const queue = event.target.elements.queue.value.trim();
      if (queue) transfer(chatId, { queue }, `queue ${queue}`);
    });
    role(node, "transfer-agent").addEventListener("submit", (event) => {
      event.preventDefault();
      const agent = event.target.elements.agent_id.value.trim();
      if (agent) transfer(chatId, { agent_id: agent }, `agent ${agent}`);
    });
    role(node, "close-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const wrapUp = role(node, "wrap").value.trim();
      try {
        await api(`/api/chats/${encodeURIComponent(chatId)}/close`, { method: "POST", body: wrapUp ? { wrap_up: wrapUp } : {} });
        notice(`You closed the chat with ${customerName(entry.chat)}.`);
        removeChat(chatId);
      } catch (error) {
        if (error.status === 409) endChat(chatId, "This chat has already ended.");
        failed("Could not close", error);
      }
    });
    role(node, "dismiss").addEventListener("click", () => removeChat(chatId));
  }

  function stopTyping(entry, tell) {
    clearTimeout(entry.typingTimer);
    if (entry.typingOn) {
      entry.typingOn = false;
      if (tell) typing(entry.chat.chat_id, false);
    }
  }

  function typing(chatId, on) {
    api(`/api/chats/${encodeURIComponent(chatId)}/typing`, { method: "POST", body: { typing: on } }).catch(() => {});
  }

  async function transfer(chatId, target, what) {
    const entry = S.chats.get(chatId);
    try {
      await api(`/api/chats/${encodeURIComponent(chatId)}/transfer`, { method: "POST", body: target });
      notice(`The chat with ${customerName(entry.chat)} went to ${what}.`);
      removeChat(chatId);
    } catch (error) {
      failed("Not transferred", error);
    }
  }

  function customerTyping(entry, on) {
    const line = role(entry.node, "typing");
    clearTimeout(entry.customerTimer);
    line.textContent = on ? `${customerName(entry.chat)} is typing…` : "";
    if (on) entry.customerTimer = setTimeout(() => { line.textContent = ""; }, CUSTOMER_TYPING_MS);
  }

  // -- events ---------------------------------------------------------------------------------------

  function handle(event) {
    const chatId = event.chat_id;
    const entry = chatId ? S.chats.get(chatId) : null;
    switch (event.type) {
      case "chat_offered":
        if (event.chat) addOffer(event.chat, event.at);
        else refreshMe(false);
        break;
      case "offer_withdrawn": {
        const offer = S.offers.get(chatId);
        if (offer) {
          removeOffer(chatId);
          notice(`Offer from ${customerName(offer.chat)} withdrawn (${WITHDRAWN[event.reason] || event.reason || "gone"}).`);
        }
        if (event.reason === "timeout") refreshMe(false);
        break;
      }
      case "chat_assigned":
        removeOffer(chatId);
        if (event.chat) openChat(event.chat, false);
        else refreshMe(false);
        break;
      case "customer_message":
        if (entry) {
          addMessage(entry, { from: "customer", ...event }, true);
          customerTyping(entry, false);
        } else refreshMe(false);
        break;
      case "customer_typing":
        if (entry && !entry.ended) customerTyping(entry, Boolean(event.typing));
        break;
      case "note":
        if (entry) addMessage(entry, { from: "system", ...event }, true);
        else if (event.text) notice(event.text);
        break;
      case "chat_closed":
        removeOffer(chatId);
        if (entry) {
          if (event.by === "agent") {
            if (!entry.ended) notice(`The chat with ${customerName(entry.chat)} is closed.`);
            removeChat(chatId);
          } else {
            endChat(chatId, CLOSED_BY[event.by] || "This chat has ended.");
            notice(`Chat with ${customerName(entry.chat)}: ${CLOSED_BY[event.by] || "ended."}`);
          }
        }
        break;
      case "chat_transferred":
        removeOffer(chatId);
        if (entry) {
          notice(`The chat with ${customerName(entry.chat)} was transferred.`);
          removeChat(chatId);
        }
        break;
      case "state_changed":
        if (!S.agent) break;
        S.stateAt = Date.now();
        if (event.chat_state) S.agent.chat_state = event.chat_state;
        if ("voice_state" in event) S.agent.voice_state = event.voice_state;
        if ("reason" in event) S.agent.reason = event.reason;
        else if (event.chat_state !== "NOT_READY") S.agent.reason = null;
        paintState();
        break;
      default:
        break;
    }
  }

  // Stream ids are "<ms>-<seq>": true when id `a` comes after `b`.
  function after(a, b) {
    if (!b) return true;
    const [am, as] = String(a).split("-").map(Number);
    const [bm, bs] = String(b).split("-").map(Number);
    if (Number.isNaN(am) || Number.isNaN(bm)) return a !== b;
    return am > bm || (am === bm && (as || 0) > (bs || 0));
  }

  function received(id, event) {
    if (id) {
      if (!after(id, S.cursor)) return; // seen already (a resumed stream repeats nothing, but be sure)
      S.cursor = id;
    }
    try {
      handle(event);
    } catch (error) {
      console.error("agent desktop: event not shown", event, error); // eslint-disable-line no-console
    }
  }

  function connection(text) {
    $("connection").textContent = text;
  }

  function startLive() {
    stopLive();
    // EventSource sends no Authorization header: with the gadget's token, long polling does the job.
    if (typeof window.EventSource === "function" && !S.noStream && !S.bearer) stream();
    else poll();
  }

  function stopLive() {
    S.generation += 1;
    if (S.source) {
      S.source.close();
      S.source = null;
    }
    if (S.abort) {
      S.abort.abort();
      S.abort = null;
    }
  }

  function stream() {
    const generation = S.generation;
    const url = `${BASE}/api/stream${S.cursor ? `?after=${encodeURIComponent(S.cursor)}` : ""}`;
    const source = new EventSource(url, { withCredentials: true });
    S.source = source;
    let opened = false;
    let errors = 0;
    const onEvent = (message) => {
      if (generation !== S.generation) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (!event.type && message.type !== "message") event.type = message.type;
      received(message.lastEventId || event.id || "", event);
    };
    source.onmessage = onEvent;
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    let brokenAt = 0;
    source.onopen = () => {
      if (generation !== S.generation) return;
      connection("Live");
      // Whatever happened before the stream (re)opened. A response ends every minute and the browser
      // resumes from its Last-Event-ID at once; after a longer break the transcripts are read again too.
      refreshMe(opened && brokenAt > 0 && Date.now() - brokenAt > BREAK_MS);
      opened = true;
      errors = 0;
      brokenAt = 0;
    };
    source.onerror = () => {
      if (generation !== S.generation) return;
      errors += 1;
      if (!brokenAt) brokenAt = Date.now();
      if (source.readyState === EventSource.CLOSED || (!opened && errors >= 2) || errors >= 5) {
        // The stream is refused or never opens: long polling does the same job.
        source.close();
        S.source = null;
        api("/api/me").then(() => {
          if (generation !== S.generation) return;
          S.noStream = true;
          poll();
        }).catch(() => {
          if (generation === S.generation && S.started) setTimeout(() => generation === S.generation && startLive(), 5000);
        });
      } else connection("Reconnecting…");
    };
  }

  async function poll() {
    const generation = ++S.generation;
    let failures = 0;
    let fresh = true; // the first answer and the first after a failure refresh the state
    connection("Connecting (polling)…");
    while (generation === S.generation && S.started) {
      S.abort = new AbortController();
      const query = new URLSearchParams({ wait: fresh ? "0" : String(POLL_WAIT) }); // fresh: at once, then the state
      if (S.cursor) query.set("after", S.cursor);
      const asked = Date.now();
      try {
        const answer = await api(`/api/events?${query}`, { signal: S.abort.signal });
        if (generation !== S.generation) return;
        const events = answer.events || [];
        for (const event of events) received(event.id || "", event);
        if (answer.cursor) S.cursor = answer.cursor;
        if (fresh) await refreshMe(failures > 0);
        const waited = !fresh;
        fresh = false;
        failures = 0;
        connection("Live (polling)");
        // Empty at once although asked to wait: the server has no room to wait now; ask gently.
        if (waited && !events.length && Date.now() - asked < 1000) await sleep(BUSY_MS);
      } catch (error) {
        if (generation !== S.generation || error.name === "AbortError" || error.status === 401) return;
        failures += 1;
        fresh = true;
        connection("Reconnecting…");
        await sleep(Math.min(15000, 1000 * 2 ** Math.min(failures, 4)));
      }
    }
  }

  // -- the keyboard ---------------------------------------------------------------------------------

  function focusedOffer() {
    const node = document.activeElement && document.activeElement.closest && document.activeElement.closest(".offer");
    return node ? node.dataset.chat : null;
  }

  function shortcut(event) {
    if (!S.shortcuts || !S.started || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isField(event.target)) return;
    const key = event.key;
    if (key === "a" || key === "A") {
      const chatId = focusedOffer() || ($("offers").firstElementChild && $("offers").firstElementChild.dataset.chat);
      if (chatId) {
        event.preventDefault();
        accept(chatId);
      }
    } else if (key === "r" || key === "R") {
      const chatId = focusedOffer();
      if (chatId) {
        event.preventDefault();
        reject(chatId);
      } else if (S.offers.size) notice("Go to the offer first (O), then R rejects it.");
    } else if (key === "o" || key === "O") {
      event.preventDefault();
      if (!focusOffers()) notice("No offers now.");
    } else if (/^[1-9]$/.test(key)) {
      const ids = Array.from(S.chats.keys());
      const chatId = ids[Number(key) - 1];
      if (chatId) {
        event.preventDefault();
        showChat(chatId, true);
      }
    } else if (key === "?") {
      event.preventDefault();
      $("shortcuts").open = true;
      $("shortcuts-summary").focus();
    }
  }

  // -- start ----------------------------------------------------------------------------------------

  async function start() {
    takeBearer();
    S.csrf = metaToken() || remembered();
    const form = $("login-form");
    if (form) form.addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("go-ready").addEventListener("click", () => setState(true));
    $("go-not-ready").addEventListener("click", () => setState(false));
    const keys = $("single-keys");
    try { S.shortcuts = localStorage.getItem("agent-desktop-single-keys") !== "off"; } catch (error) { /* private mode */ }
    keys.checked = S.shortcuts;
    keys.addEventListener("change", () => {
      S.shortcuts = keys.checked;
      try { localStorage.setItem("agent-desktop-single-keys", keys.checked ? "on" : "off"); } catch (error) { /* private mode */ }
    });
    document.addEventListener("keydown", shortcut);
    setInterval(tick, 1000);
    setInterval(() => {
      if (S.started && !document.hidden) refreshMe(false);
    }, REFRESH_MS);
    try {
      showDesk(await api("/api/me", { loginCall: true }));
    } catch (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) showLogin("");
      else {
        $("loading").textContent = `The desktop cannot start: ${error.message} Reload to try again.`;
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
