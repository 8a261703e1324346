"""Every Redis key name the connector uses, in one place.

Keys are namespaced `cc:` so the connector can share a Redis with other tenants of it (RQ keeps its
own `rq:` namespace). A conversation thread is the durable pairing of one customer address with one
channel asset; its id is a hash so that provider addresses (which may hold `:` or `/`) never leak
into key or RQ job-id syntax.
"""

from __future__ import annotations

PREFIX = "cc"


def inbox(thread_id: str) -> str:
    """LIST of inbound event JSON, oldest first; an item leaves only after it is handled."""
    return f"{PREFIX}:inbox:{thread_id}"


def lease(thread_id: str) -> str:
    """STRING token of the drain job that currently owns the thread (PX expiry = lease)."""
    return f"{PREFIX}:lease:{thread_id}"


def wake(thread_id: str) -> str:
    """STRING flag: the thread is already on the ready list (coalesces wake-ups)."""
    return f"{PREFIX}:wake:{thread_id}"


def ready() -> str:
    """LIST of thread ids whose inbox has items for a dispatch job to drain."""
    return f"{PREFIX}:ready"


def dispatchers() -> str:
    """ZSET dispatcher slot id → last heartbeat: dispatch jobs queued or running (capped)."""
    return f"{PREFIX}:dispatchers"


def dispatcher_sequence() -> str:
    """STRING counter issuing dispatcher slot ids."""
    return f"{PREFIX}:dispatchers:seq"


def outbox(thread_id: str) -> str:
    """LIST of contact-center events and system messages for the customer, oldest first; an item
    leaves only after its effect (the send) is done. Drained under the same lease as the inbox, so
    one holder at a time changes a thread."""
    return f"{PREFIX}:outbox:{thread_id}"


def active_inboxes() -> str:
    """SET of thread ids whose inbox or outbox may hold items; the sweeper scans it."""
    return f"{PREFIX}:inboxes"


def deferred() -> str:
    """ZSET `<thread id>:<box>` → unix time the box's backing-off head is due again; workers poll it
    and put due threads on the ready list (DEFERRED_POLL_SECONDS)."""
    return f"{PREFIX}:deferred"


def timers() -> str:
    """ZSET of scheduled timers (JSON: thread id, outbox item, a unique id) → unix time due; every
    worker polls it, and a claimed timer's score moves forward by its claim lease (store/timers.py)."""
    return f"{PREFIX}:timers"


def deferred_member(thread_id: str, box: str) -> str:
    """The `deferred` member of one box; the thread id is what precedes the last `:`."""
    return f"{thread_id}:{box}"


def breaker(service: str) -> str:
    """HASH circuit breaker of an outside service (`ece:<integration>`): `failures` in a row,
    `open_until` (unix s; absent while closed), `cooldown` (s)."""
    return f"{PREFIX}:breaker:{service}"


def breaker_probe(service: str) -> str:
    """STRING held (PX) by the one call that probes a half-open breaker."""
    return f"{PREFIX}:breaker:{service}:probe"


def in_flight() -> str:
    """HASH `<integration>|<process>` → `<calls held>|<unix time>`: each draining process's calls in
    flight to each integration, rewritten every second (connector/backends/in_flight.py)."""
    return f"{PREFIX}:in-flight"


def backpressure() -> str:
    """STRING JSON of the last backpressure reading (operations/backpressure.py), EX a few seconds,
    so probes and pages that ask often cost one GET."""
    return f"{PREFIX}:backpressure"


def parked(service: str) -> str:
    """ZSET thread id → when it was parked: threads whose head waits for `service`'s breaker to
    close; all are woken the moment a call succeeds."""
    return f"{PREFIX}:parked:{service}"


def retry_state(thread_id: str) -> str:
    """HASH per box (`in`, `out`): `<box>_until` (unix s before which the box's head is not retried)
    and `<box>` (JSON: digest of the head, attempts, first failure time). Cleared by the commit."""
    return f"{PREFIX}:retry:{thread_id}"


def effects(box: str, thread_id: str) -> str:
    """HASH effect key → result of the effects already done for the box's head item (a started
    conversation id, "message part 2 sent"), so a repeat after a crash or a retry skips them.
    Cleared by the commit that takes the item out."""
    return f"{PREFIX}:effects:{box}:{thread_id}"


def dead_letters() -> str:
    """LIST of dead-letter ids, newest first (capped)."""
    return f"{PREFIX}:dead"


def dead_letter(letter_id: str) -> str:
    """STRING JSON of one dead letter: the item, its box and thread, the reason, when."""
    return f"{PREFIX}:dead:{letter_id}"


def dedupe(channel: str, asset: str, provider_id: str) -> str:
    """STRING marker that a provider event was accepted (TTL = the provider's retry horizon)."""
    return f"{PREFIX}:seen:{channel}:{asset}:{provider_id}"


def thread(thread_id: str) -> str:
    """HASH of the thread: channel, asset, customer address, customer details, routing, state."""
    return f"{PREFIX}:thread:{thread_id}"


def timeline(thread_id: str) -> str:
    """LIST of JSON entries of what happened on the thread, oldest first (capped)."""
    return f"{PREFIX}:timeline:{thread_id}"


def threads_by_activity() -> str:
    """ZSET thread id → last activity (unix seconds), for listing recent conversations."""
    return f"{PREFIX}:threads"


def waiting(integration: str, entry_point: str) -> str:
    """ZSET thread id → when it was queued, of the connector's conversations waiting for an agent on
    one entry point; a thread is in it exactly while its state is queued (written by the drain's
    commit, in the same atomic step as the state). A customer's place in the queue is its rank."""
    return f"{PREFIX}:waiting:{integration}:{entry_point}"


def tallies() -> str:
    """HASH of the counters and latency histograms /metrics shows (store/tallies.py)."""
    return f"{PREFIX}:tallies"


def traffic(minute: int) -> str:
    """HASH `in|<channel>` / `out|<channel>` → messages of one minute (unix seconds // 60), for the
    overview's charts; written with the tallies and expiring after tallies.MINUTES_KEPT minutes."""
    return f"{PREFIX}:traffic:{minute}"


def sweeper_lock() -> str:
    """STRING held by the one worker that sweeps this round."""
    return f"{PREFIX}:sweeper"


def unrouted() -> str:
    """LIST of JSON records of inbound events that matched no rule (capped), for operators."""
    return f"{PREFIX}:unrouted"


# -- routing: agent credentials (connector/blending/finesse/credentials.py) ------------------------


def agent_credentials() -> str:
    """HASH agent id → Fernet token of the agent's Finesse password (never stored in clear)."""
    return f"{PREFIX}:routing:credentials"


# -- routing: agent registry and media blending (connector/blending/agents.py, service.py, sync.py) --


def agents() -> str:
    """SET of the agent ids in the registry (synced from Finesse, or met in an event)."""
    return f"{PREFIX}:routing:agents"


def agent_profile(agent_id: str) -> str:
    """HASH of the agent as Finesse reports it: login name, names, extension, team, roles."""
    return f"{PREFIX}:routing:agent:{agent_id}"


def agent_state(agent_id: str) -> str:
    """STRING JSON of the agent's blending state; written only by the holder of the agent lock."""
    return f"{PREFIX}:routing:state:{agent_id}"


def agent_lock(agent_id: str) -> str:
    """STRING token of the one handler changing the agent now (PX expiry = lease)."""
    return f"{PREFIX}:routing:lock:{agent_id}"


def agent_logins() -> str:
    """HASH lower-cased login name → agent id, to map chat-side agents to Finesse agents."""
    return f"{PREFIX}:routing:logins"


def blending_due() -> str:
    """SET of agent ids with a change not yet confirmed or taken; reconcile re-reads them."""
    return f"{PREFIX}:routing:due"


def chat_interrupted() -> str:
    """SET of agent ids the connector's own router must not offer a chat (voice has them)."""
    return f"{PREFIX}:routing:interrupted"


def agent_sync_lock() -> str:
    """STRING held by the one process syncing agents from Finesse now (EX expiry)."""
    return f"{PREFIX}:routing:sync-lock"


def agent_sync_status() -> str:
    """HASH of the last agent sync: at, agents, added, updated, removed, error."""
    return f"{PREFIX}:routing:sync"


def agent_login_failures(login: str) -> str:
    """STRING counter of failed connector logins for one agent login (expires: a lockout window)."""
    return f"{PREFIX}:routing:login-failures:{login.casefold()}"


def chat_events() -> str:
    """STREAM of chat-side events (assigned, ended, ready) for the listener's consumer group."""
    return f"{PREFIX}:routing:chat-events"


def agent_sync_requested() -> str:
    """STRING flag: an operator asked for an agent sync now; the listener runs it and clears it."""
    return f"{PREFIX}:routing:sync-requested"


def listener_lease() -> str:
    """STRING token of the one listener process that drives Finesse agents (PX expiry = lease;
    connector/blending/lease.py): a listener on another host waits as a standby until it lapses."""
    return f"{PREFIX}:routing:listener-lease"


# -- ECE (connector/backends/ece/) ---------------------------------------------------------------------------


def ece_token(integration: str, fingerprint: str) -> str:
    """STRING access token of an integration's client app (EX = shortly before it expires).

    `fingerprint` is a hash of the base URL and client key, so changed credentials never reuse a
    token issued for the old ones; all workers share one token instead of logging in each."""
    return f"{PREFIX}:ece:token:{integration}:{fingerprint}"


def ece_entry_point_config(integration: str, entry_point_id: str) -> str:
    """STRING JSON of an entry point's configuration (lastModified, attachment policies), cached."""
    return f"{PREFIX}:ece:epconfig:{integration}:{entry_point_id}"


def ece_conversation(integration: str, conversation_id: str) -> str:
    """STRING JSON {thread, sequence}: which thread an ECE conversation belongs to (callbacks key on it).
    Written as soon as the conversation is started, before ECE can call back about it."""
    return f"{PREFIX}:ece:conv:{integration}:{conversation_id}"


# -- operator configuration, users and tokens (connector/config/overrides.py, connector/auth/) -----------


def config_items(kind: str) -> str:
    """HASH item key → JSON of an item created in the UI or API (`kind`: integrations, assets, rules).
    Assets are keyed `channel/name`, the others by name. Secrets are stored as entered (Redis is the
    secret store of UI-made items, as the environment is for provisioned ones)."""
    return f"{PREFIX}:config:{kind}"


def config_rule_order() -> str:
    """LIST of rule names in evaluation order (provisioned and UI rules alike); rules missing from it
    follow in their default order (provisioned files first, then UI rules by creation)."""
    return f"{PREFIX}:config:rule-order"


def config_templates() -> str:
    """HASH `locale/type` → template text: deployment-wide overrides of the shipped template files."""
    return f"{PREFIX}:config:templates"


def config_version() -> str:
    """STRING counter bumped by every configuration write; processes reload when it moves."""
    return f"{PREFIX}:config:version"


def config_generation() -> str:
    """STRING counter of the provisioned files' generation: bumped by a reload (SIGHUP, the API, the
    Import / export page) once the trigger has loaded the files without a problem; each process loads
    the files again when it moves (connector/config/reload.py)."""
    return f"{PREFIX}:config:generation"


def config_reload() -> str:
    """HASH of the last reload request: `generation`, `by` (operator, or SIGHUP), `via` (api, ui,
    signal), `at` (unix s)."""
    return f"{PREFIX}:config:reload"


def config_processes() -> str:
    """HASH process name (`role:host:pid`) → JSON {role, pid, host, generation, ok, error, at}: what
    each process did with the files of the last generation; cleared by every reload, expires a week
    after its last write."""
    return f"{PREFIX}:config:processes"


def users() -> str:
    """HASH user name → JSON {password_hash, role, created_at} of operator accounts."""
    return f"{PREFIX}:users"


def api_tokens() -> str:
    """HASH sha256 of an API token → JSON {user, label, created_at}; the token itself is never stored."""
    return f"{PREFIX}:api-tokens"


def login_failures(user: str) -> str:
    """STRING counter of failed operator logins for one account (expires: the lockout window)."""
    return f"{PREFIX}:login-failures:{user}"


def indicator_reading(integration: str, entry_point_id: str) -> str:
    """STRING JSON of an entry point's last availability reading (the UI's four indicators, with the
    numbers behind them and when they were read); pages render it, refreshes rewrite it. The name
    keeps its first form, so readings stored before any backend but ECE existed still show."""
    return f"{PREFIX}:ece:indicators:{integration}:{entry_point_id}"


# -- customer profiles (connector/relay/profiles.py) -----------------------------------------------------


def customer_profile(thread_id: str) -> str:
    """STRING JSON {fields, profile} of the provider's profile of a thread's customer (Messenger: the
    User Profile API's answer for the PSID on that asset, a thread being one (channel, asset,
    customer)): the details found, or null when there were none. EX = 24 h for a profile, 5 min for
    none, so a returning customer costs no call and a Graph outage not one per conversation."""
    return f"{PREFIX}:profile:{thread_id}"


# -- Hybrid Chat, the built-in router (connector/backends/hybrid/) ------------------------------------


def hybrid_chat(chat_id: str) -> str:
    """HASH of one Hybrid Chat chat (a conversation of a thread): its queue, state (queued, offered,
    active, closed), agent, customer and times. Its id is the thread's conversation id."""
    return f"{PREFIX}:hybrid:chat:{chat_id}"


def hybrid_queue(integration: str, queue: str) -> str:
    """ZSET chat id → when it was queued, of the chats waiting in a queue and offered to nobody."""
    return f"{PREFIX}:hybrid:queue:{integration}:{queue}"


def hybrid_agent(agent_id: str) -> str:
    """HASH of an agent's Hybrid Chat state: chat state (READY, NOT_READY), reason, max chats,
    skills, when they were last offered a chat, and `offer:<queue>` → the chat offered from it now."""
    return f"{PREFIX}:hybrid:agent:{agent_id}"


def hybrid_agent_chats(agent_id: str) -> str:
    """SET of the chats an agent holds: offered to them or accepted, not closed."""
    return f"{PREFIX}:hybrid:agent-chats:{agent_id}"


def hybrid_ready() -> str:
    """SET of the agents whose chat state is READY: the router reads only these."""
    return f"{PREFIX}:hybrid:ready"


def hybrid_declined(chat_id: str) -> str:
    """SET of the agents who rejected a chat; EX = its queue's offer timeout, so the chat goes to the
    next agent at once and comes back to them only if nobody else takes it meanwhile."""
    return f"{PREFIX}:hybrid:declined:{chat_id}"


def hybrid_offers() -> str:
    """ZSET chat id → when its ringing offer expires (RONA)."""
    return f"{PREFIX}:hybrid:offers"


def hybrid_inactive() -> str:
    """ZSET chat id → when the chat ends for the customer's silence (their last message, or the
    accept, plus the queue's `inactivity_timeout_seconds`): the accepted chats of queues that have one."""
    return f"{PREFIX}:hybrid:inactive"


def hybrid_inactive_closed() -> str:
    """SET of the chats the customer's silence has closed whose agent is not yet freed and told (nor
    the customer): the close adds a chat, the one transaction that does the rest removes it."""
    return f"{PREFIX}:hybrid:inactive-closed"


def hybrid_events(agent_id: str) -> str:
    """STREAM of an agent's desktop events (offers, customer messages, closes, state changes); an
    entry id is the cursor of `GET /agent/api/events` and the SSE `id:`."""
    return f"{PREFIX}:hybrid:events:{agent_id}"


def hybrid_transcript(chat_id: str) -> str:
    """LIST of a chat's messages both ways (JSON), as the agent's desktop shows them."""
    return f"{PREFIX}:hybrid:transcript:{chat_id}"


def hybrid_history(thread_id: str) -> str:
    """LIST of a customer's earlier chat ids on this thread, newest first (the agent sees them)."""
    return f"{PREFIX}:hybrid:history:{thread_id}"


def hybrid_handle_times(integration: str, queue: str) -> str:
    """LIST of the last handle times (seconds) of a queue's chats, newest first: its wait estimate."""
    return f"{PREFIX}:hybrid:handle-times:{integration}:{queue}"


def hybrid_route_wanted() -> str:
    """STRING counter of routing requests: something changed (a chat queued, an agent ready, a slot
    freed); a pass clears it only if no request came during the pass, so none is lost."""
    return f"{PREFIX}:hybrid:route-wanted"


def hybrid_route_sweep() -> str:
    """STRING (PX: the sweep interval): a worker's tick ran the regular routing pass lately."""
    return f"{PREFIX}:hybrid:route-sweep"


def hybrid_router_lock() -> str:
    """STRING token of the process running the router (PX expiry): one routing pass at a time."""
    return f"{PREFIX}:hybrid:router-lock"


def hybrid_interrupted_seen() -> str:
    """SET of the agents the router last saw held by a voice call: the change since is announced."""
    return f"{PREFIX}:hybrid:interrupted-seen"


def hybrid_file(file_id: str) -> str:
    """HASH of a file passed between a customer and an agent (name, type, bytes), EX a week."""
    return f"{PREFIX}:hybrid:file:{file_id}"


def hybrid_session(token_digest: str) -> str:
    """STRING JSON {agent_id, login, name, csrf, issued_at, via} of an agent's desktop session or API
    token, by the token's SHA-256 (the token itself is never stored); EX = the session's life."""
    return f"{PREFIX}:hybrid:session:{token_digest}"


def hybrid_agent_sessions(agent_id: str) -> str:
    """SET of the token digests an agent holds (pruned on logout), so the last logout can forget the
    agent's Finesse password."""
    return f"{PREFIX}:hybrid:agent-sessions:{agent_id}"


def survey(conversation_id: str) -> str:
    """STRING JSON of a conversation's post-chat survey (store/surveys.py); kept like the thread."""
    return f"{PREFIX}:survey:{conversation_id}"


def surveys_by_time() -> str:
    """ZSET conversation id → when its survey was answered or ended, for the API's date filters."""
    return f"{PREFIX}:surveys"


def survey_totals() -> str:
    """HASH `<integration>\\x1f<entry point>\\x1f(responses|score_sum)` → count: /metrics' survey counters."""
    return f"{PREFIX}:survey-totals"


def durability_probe() -> str:
    """STRING counter the web process increments before `WAIT` (store/durability.py): WAIT covers the
    writes up to its own connection's last one, and this write makes that every write before it."""
    return f"{PREFIX}:durability-probe"
