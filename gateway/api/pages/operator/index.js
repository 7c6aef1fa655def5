// The operator view: every contract's devices with their health (filter offline / silent / low
// battery), the device messages ingest stored aside with their reasons, the recorders per camera
// with the archive's floor and evictions, the open operator alerts, and this process's metrics.
// Only the public admin API, with the admin token the login page stored.
import { api, ApiError, requireLogin, token } from "/static/api.js";
import { el, $, when, say } from "/static/ui.js";

const STATES = {
  offline: ["Не в сети", "bad"],
  silent: ["Молчит", "warn"],
  low_battery: ["Слабая батарея", "warn"],
};
const FILTERS = [["", "Все"], ["offline", "Не в сети"], ["silent", "Молчат"], ["low_battery", "Слабая батарея"]];
const KINDS = {
  motion: "датчик движения", leak: "датчик протечки", contact: "датчик открытия", keypad: "клавиатура",
  siren: "сирена", alarm_panel: "охранная панель", intercom: "домофон", gate: "ворота", camera: "камера",
  zigbee_bridge: "шлюз Zigbee",
};
const REASONS = {
  bad_topic: "неверный топик", unknown_device: "неизвестное устройство", too_large: "слишком большое",
  not_utf8: "не UTF-8", not_json: "не JSON", not_object: "не объект JSON", too_deep: "слишком глубокая вложенность",
  invalid: "не по схеме", store_error: "ошибка базы",
};
const RECORDING = {
  recording: ["идёт запись", "ok"], paused: ["пауза: диск полон", "bad"], offline: ["нет связи", "bad"],
  unknown: ["нет данных", ""],
};

let shown = "";
let deviceCursor = null;
let rejectedCursor = null;

const badge = (text, kind = "") => el("span", { class: `badge ${kind}` }, text);
const bytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} ГБ` : `${(n / 1e6).toFixed(1)} МБ`);
const ago = (iso) => (iso ? when(iso) : "никогда");

/** A failed section says why in the status line; a 401 has already sent us to login. */
async function load(what, fn) {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(`${what}: ${error.message}`, "error");
  }
}

function deviceRow(d) {
  const quiet = d.online === null && d.last_seen_at === null;
  const states = d.states.length ? d.states.map((s) => badge(...STATES[s]))
    : [quiet ? badge("Ещё не на связи") : badge("В норме", "ok")];
  return el("tr", { dataset: { device: d.id, states: d.states.join(" ") } },
    el("td", {}, el("strong", {}, d.name), el("div", { class: "muted" }, KINDS[d.kind] || d.kind)),
    el("td", {}, ...states),
    el("td", {}, `№ ${d.contract}`, el("div", { class: "muted" }, d.address)),
    el("td", {}, ago(d.last_seen_at)),
    el("td", { class: "num" }, d.battery === null ? (d.battery_low ? "мало" : "—") : `${d.battery} %`),
    el("td", { class: "num" }, d.linkquality === null ? "—" : `${d.linkquality} из 255`));
}

function filterButtons(counts) {
  const group = $("#device-filters");
  group.replaceChildren(...FILTERS.map(([value, label]) => {
    const count = value ? counts[value] : counts.total;
    return el("button", {
      type: "button", "aria-pressed": String(value === shown),
      onclick: () => { shown = value; load("Устройства", () => devices()); },
    }, `${label} (${count})`);
  }));
}

async function devices(more = false) {
  if (!more) deviceCursor = null;
  const query = new URLSearchParams({ limit: "50" });
  if (shown) query.set("state", shown);
  if (deviceCursor) query.set("cursor", deviceCursor);
  const page = await api(`/admin/device-health?${query}`);
  const body = $("#devices tbody");
  const rows = page.items.map(deviceRow);
  if (!more && !rows.length) rows.push(el("tr", {}, el("td", { colspan: "6" }, "Нет таких устройств")));
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  filterButtons(page.counts);
  deviceCursor = page.next_cursor;
  $("#devices-more").classList.toggle("hidden", !deviceCursor);
}

function rejectedRow(r) {
  return el("tr", { dataset: { reason: r.reason } },
    el("td", {}, when(r.received_at)),
    el("td", {}, badge(REASONS[r.reason] || r.reason, "bad"), el("div", { class: "muted" }, r.detail)),
    el("td", {}, el("code", {}, r.topic), r.device ? el("div", { class: "muted" }, r.device) : null),
    el("td", { class: "payload" }, el("code", {}, r.payload_text.slice(0, 200))));
}

async function rejected(more = false) {
  if (!more) rejectedCursor = null;
  const query = new URLSearchParams({ limit: "50" });
  if (rejectedCursor) query.set("cursor", rejectedCursor);
  const page = await api(`/admin/rejected?${query}`);
  const rows = page.items.map(rejectedRow);
  if (!more && !rows.length) rows.push(el("tr", {}, el("td", { colspan: "4" }, "Отклонённых сообщений нет")));
  const body = $("#rejected tbody");
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  rejectedCursor = page.next_cursor;
  $("#rejected-more").classList.toggle("hidden", !rejectedCursor);
}

function figure(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

async function recorders() {
  const r = await api("/admin/recorders");
  const known = (v, f) => (v === null ? "нет данных" : f(v));
  $("#archive").replaceChildren(
    figure("Порог свободного места", `${bytes(r.floor_min_bytes)} или ${r.floor_min_percent} %`),
    figure("Хранение", `${r.retention_days} дн.`),
    figure("Свободно", known(r.free_bytes, bytes)),
    figure("Вытеснено до срока", known(r.evicted, String)),
    figure("Удалено по сроку", known(r.expired, String)));
  $("#disk-alerts").replaceChildren(...r.disk_alerts.map((a) =>
    el("li", {}, badge("Диск архива", "bad"), ` ${a.text}`, el("div", { class: "muted" }, `с ${when(a.raised_at)}`))));
  const rows = r.cameras.map((c) => {
    const [text, kind] = RECORDING[c.status] || [c.status, ""];
    return el("tr", { dataset: { device: c.id } },
      el("td", {}, el("strong", {}, c.name), el("div", { class: "muted" }, `№ ${c.contract}`)),
      el("td", {}, badge(text, kind), c.since ? el("div", { class: "muted" }, `с ${when(c.since)}`) : null),
      el("td", {}, ago(c.last_segment_end)),
      el("td", { class: "num" }, String(c.segments)),
      el("td", { class: "num" }, bytes(c.bytes)));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5" }, "Камер нет")));
  $("#cameras tbody").replaceChildren(...rows);
}

async function alerts() {
  const list = await api("/admin/operator-alerts");
  const items = list.map((a) => el("li", { dataset: { key: a.key } },
    el("div", { class: "item-head" }, el("strong", {}, a.text)),
    el("div", { class: "muted" }, `${a.key} · с ${when(a.raised_at)}`)));
  $("#alerts").replaceChildren(...(items.length ? items : [el("li", {}, "Открытых оповещений нет")]));
}

async function metrics() {
  const list = await api("/admin/metrics-summary");
  const fmt = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(3));
  $("#metrics tbody").replaceChildren(...list.map((m) => el("tr", {},
    el("td", {}, el("code", {}, m.name), el("div", { class: "muted" }, m.help)),
    el("td", {}, Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
    el("td", { class: "num" }, fmt(m.value)))));
}

async function refresh() {
  say("");
  await Promise.all([
    load("Оповещения", alerts),
    load("Устройства", () => devices()),
    load("Отклонённые сообщения", () => rejected()),
    load("Запись", recorders),
    load("Метрики", metrics),
  ]);
}

if (requireLogin()) {
  $("#logout").addEventListener("click", () => { token.clear(); location.assign("/operator/login"); });
  $("#refresh").addEventListener("click", refresh);
  $("#devices-more").addEventListener("click", () => load("Устройства", () => devices(true)));
  $("#rejected-more").addEventListener("click", () => load("Отклонённые сообщения", () => rejected(true)));
  refresh().then(() => document.body.dataset.ready = "true");
}
