// The sensors card: each sensor's state, battery, link quality and when it was last heard.
// The subscriber API lists devices without their health, so the card folds the home's recent
// events (GET /events, newest first): the newest value of each field wins, as Zigbee2MQTT
// devices report battery and link in reports of their own. New events from the stream fold in.
import { api } from "/static/api.js";
import { el, when } from "/static/ui.js";
import { listen } from "/app/home-live.js";

const SENSORS = new Set(["motion", "leak", "contact", "keypad", "siren"]);
const KIND = { motion: "Датчик движения", leak: "Датчик протечки", contact: "Датчик открытия", keypad: "Клавиатура", siren: "Сирена" };
const FIELDS = ["occupancy", "contact", "water_leak", "tamper", "battery", "battery_low", "linkquality"];
const RECENT = 200;

/** Fold one event into the device's known state; `newer` says whether it is newer than all so far. */
function fold(known, event, newer) {
  const body = event.body || {};
  for (const field of FIELDS) {
    if (body[field] !== undefined && body[field] !== null && (newer || !(field in known))) known[field] = body[field];
  }
  if (event.event === "availability" && (newer || !("online" in known))) known.online = body.state === "online";
  if (newer || !known.seen) known.seen = event.received_at;
}

function stateOf(kind, s) {
  if (s.online === false) return ["Не в сети", "bad"];
  if (s.tamper) return ["Вскрытие корпуса", "bad"];
  if (kind === "leak" && s.water_leak !== undefined) return s.water_leak ? ["Протечка!", "bad"] : ["Сухо", "ok"];
  if (kind === "contact" && s.contact !== undefined) return s.contact ? ["Закрыто", "ok"] : ["Открыто", "warn"];
  if (kind === "motion" && s.occupancy !== undefined) return s.occupancy ? ["Движение", "warn"] : ["Нет движения", "ok"];
  return s.seen ? ["В сети", "ok"] : ["Нет данных", ""];
}

function facts(s, zone) {
  const out = [];
  if (s.battery !== undefined) out.push(`Батарея ${s.battery} %`);
  if (s.battery_low) out.push("Батарея разряжена");
  if (s.linkquality !== undefined) out.push(`Связь ${s.linkquality} из 255`);
  out.push(s.seen ? `На связи ${when(s.seen, zone)}` : "Ещё не выходил на связь");
  return out;
}

export function sensorsCard({ home, zone, devices }) {
  const sensors = devices.filter((d) => SENSORS.has(d.kind));
  if (!sensors.length) return {};
  const known = new Map(sensors.map((d) => [d.id, {}]));
  const list = el("ul", { class: "list", id: "sensors" });
  const card = el("section", { class: "card", "aria-labelledby": "sensors-title" },
    el("h2", { id: "sensors-title" }, "Датчики"), list);

  function draw() {
    list.replaceChildren(...sensors.map((d) => {
      const s = known.get(d.id);
      const [text, kind] = stateOf(d.kind, s);
      return el("li", { dataset: { device: d.id } },
        el("div", { class: "item-head" },
          el("strong", {}, d.name),
          el("span", { class: `badge ${kind}`, dataset: { state: "" } }, text)),
        el("div", { class: "facts" }, el("span", {}, KIND[d.kind]), facts(s, zone).map((f) => el("span", {}, f))));
    }));
  }

  async function load() {
    const page = await api(`/events?home=${encodeURIComponent(home.id)}&limit=${RECENT}`);
    for (const event of page.items) if (known.has(event.device)) fold(known.get(event.device), event, false);
    draw();
  }

  const stop = listen((m) => {
    if (m.type === "resync") { // events were missed: start the fold again from the stored ones
      known.forEach((_, id) => known.set(id, {}));
      load().catch(() => {});
    }
    if (m.type === "event" && known.has(m.event.device)) {
      fold(known.get(m.event.device), m.event, true);
      draw();
    }
  });
  draw();
  load().catch(() => {});
  return { card, stop };
}
