// The history of the chosen home: device events, alerts, intercom calls, gate and door
// commands and (for the owner) the audit trail, newest first, filtered by kind and dates in the
// home's time zone, paged by the API's cursors («Показать ещё»), and new events and alerts
// put on top as the page's stream brings them.
import { api, ApiError } from "/static/api.js";
import { el, $, say, when } from "/static/ui.js";
import { startPage } from "/app/shell.js";
import { feed, midnight } from "/app/history-feed.js";
import { EVENT_NAMES, alertItem, auditItem, callItem, commandItem, eventItem } from "/app/history-items.js";

const page = await startPage({ title: "История", active: "history" });
const form = $("#filters");
const list = $("#history");
const more = $("#history-more");
const empty = $("#history-empty");
const LIMIT = 20;

if (page.me.role !== "owner") form.kind.querySelector("option[value='audit']").remove();
form.event.append(...Object.entries(EVENT_NAMES).map(([value, label]) => el("option", { value }, label)));

let names = () => "";
let current = null; // {feed, since, until, kind}
let seen = new Set();

const q = (params) => {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined));
  return query.toString() ? `?${query}` : "";
};

/** The API lists the kind filter reads, each as a feed source for the chosen home. */
function sources(kind, home, since, until, event) {
  const id = home.id;
  const all = {
    events: {
      fetch: (cursor) => api(`/events${q({ home: id, event, cursor, limit: LIMIT, since: since?.toISOString(), until: until?.toISOString() })}`),
      time: (e) => e.received_at,
      keep: (e) => (event ? e.event === event : kind !== "all" || !["telemetry", "heartbeat"].includes(e.event)),
      show: (e) => eventItem(e, names),
    },
    alerts: {
      fetch: (cursor) => api(`/alerts${q({ cursor, limit: LIMIT })}`),
      time: (a) => a.at,
      keep: (a) => a.home === id,
      show: (a) => alertItem(a, names),
    },
    calls: {
      fetch: (cursor) => api(`/calls${q({ home: id, cursor, limit: LIMIT })}`),
      time: (c) => c.started_at,
      show: (c) => callItem(c),
    },
    commands: {
      fetch: (cursor) => api(`/homes/${encodeURIComponent(id)}/commands${q({ cursor, limit: LIMIT })}`),
      time: (c) => c.created_at,
      show: (c) => commandItem(c, names),
    },
    audit: {
      fetch: (cursor) => api(`/audit${q({ home: id, cursor, limit: LIMIT })}`),
      time: (a) => a.at,
      show: (a) => auditItem(a, names),
    },
  };
  // «Всё»: calls and commands are already in the events as their history lines.
  const chosen = kind === "all" ? ["events", "alerts", ...(page.me.role === "owner" ? ["audit"] : [])] : [kind];
  return chosen.map((name) => ({ name, ...all[name] }));
}

function entry({ name, item }) {
  const source = current.sources.find((s) => s.name === name);
  const { title, facts, kind } = source.show(item);
  const at = source.time(item);
  return el("li", { class: "entry", dataset: { kind, id: String(item.id), key: `${name}:${item.id}` } },
    el("div", { class: "item-head" }, el("strong", {}, title), el("time", { datetime: at }, when(at, page.zone))),
    el("div", { class: "facts" }, facts.filter(Boolean).map((f) => el("span", {}, f))));
}

function add(entries, { top = false } = {}) {
  const fresh = entries.filter((e) => {
    const key = `${e.name}:${e.item.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }).map(entry);
  if (top) {
    fresh.forEach((node) => node.classList.add("fresh"));
    list.prepend(...fresh);
  } else {
    list.append(...fresh);
  }
  empty.classList.toggle("hidden", list.children.length > 0);
}

async function next() {
  more.disabled = true;
  const asked = current.feed;
  try {
    const entries = await asked.more();
    if (asked !== current.feed) return; // another home or filter was chosen meanwhile
    add(entries);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(error.status === 403 ? "Эта история вам недоступна: попросите владельца договора о правах" : error.message, "error");
  } finally {
    more.disabled = false;
    more.classList.toggle("hidden", current.feed.exhausted());
    empty.classList.toggle("hidden", list.children.length > 0);
  }
}

async function load() {
  list.replaceChildren();
  seen = new Set();
  say("");
  if (!page.home) {
    empty.textContent = "Нет доступных домов.";
    empty.classList.remove("hidden");
    return;
  }
  const kind = form.kind.value;
  $("#event-filter").classList.toggle("hidden", kind !== "events");
  const event = kind === "events" && form.event.value ? form.event.value : null;
  const since = form.since.value ? midnight(form.since.value, page.zone) : null;
  const until = form.until.value ? midnight(form.until.value, page.zone, 1) : null;
  const chosen = sources(kind, page.home, since, until, event);
  current = { kind, since, until, sources: chosen, feed: feed(chosen, { since, until }) };
  await next();
}

/** Calls and commands change state after they are listed: their lists are asked again. */
const CHANGED = {
  calls: (m, home) => m.type === "call" && m.call.home === home,
  commands: (m, home) => m.type === "event" && m.event.event === "command" && m.event.home === home,
};

/** The first page of a source again: entries already shown are redrawn, new ones go on top. */
async function refresh(name) {
  const source = current.sources.find((s) => s.name === name);
  let items;
  try {
    ({ items } = await source.fetch(null));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return;
  }
  const fresh = [];
  for (const item of items) {
    const key = `${name}:${item.id}`;
    const shown = list.querySelector(`li[data-key="${CSS.escape(key)}"]`);
    if (shown) shown.replaceWith(entry({ name, item }));
    else if (!seen.size || new Date(source.time(item)) >= newest()) fresh.push({ name, item });
  }
  add(fresh, { top: true });
}

function newest() {
  const first = list.querySelector("time");
  return first ? new Date(first.getAttribute("datetime")) : new Date(0);
}

/** A stream message that belongs on top of the list as it is filtered now. */
function live(message) {
  if (!current || !page.home) return;
  if (message.type === "resync") return void load();
  const now = new Date();
  if ((current.since && now < current.since) || (current.until && now >= current.until)) return;
  const changed = Object.entries(CHANGED).find(([name, test]) => current.kind === name && test(message, page.home.id));
  if (changed) return void refresh(changed[0]);
  const name = message.type === "event" ? "events" : message.type === "alert" ? "alerts" : null;
  const source = current.sources.find((s) => s.name === name);
  const item = message[message.type];
  if (!source || item.home !== page.home.id || (source.keep && !source.keep(item))) return;
  add([{ name, item }], { top: true });
}

async function deviceNames() {
  try {
    const devices = await api("/devices");
    const byId = new Map(devices.map((d) => [d.id, d.name]));
    names = (id) => byId.get(id) || id || "";
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
}

form.addEventListener("change", load);
form.addEventListener("submit", (event) => event.preventDefault());
more.addEventListener("click", next);
window.addEventListener("moydom:message", (event) => live(event.detail));
window.addEventListener("homechange", load);
await deviceNames();
await load();
