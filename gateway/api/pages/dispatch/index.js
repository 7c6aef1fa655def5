// The live queue of open cases, from the dispatch stream (resumable: a dropped connection
// misses nothing). A new case sounds and stays highlighted until the dispatcher opens it; a
// re-sent one (nobody acknowledged it in time) sounds again and escalates: a counter and a
// red frame. Closed cases leave the queue.
import { api, requireLogin } from "/static/api.js";
import { openStream } from "/static/stream.js";
import { $, el, say, when } from "/static/ui.js";
import { ALARMS, STATES, alarmSound, contactName, isSeen, logoutButton, markSeen } from "/dispatch/console.js";

requireLogin();
logoutButton($("#logout"));
const chime = alarmSound($("#sound"));
const cases = new Map();

function row(item) {
  const fresh = item.status === "open" && !isSeen(item);
  const classes = [item.status, fresh ? "fresh" : "", item.resends > 0 && item.status === "open" ? "escalated" : ""];
  const title = `№ ${item.id} · ${ALARMS[item.alarm] || item.alarm}`;
  return el("li", { class: classes.filter(Boolean).join(" "), dataset: { case: String(item.id) } },
    el("div", { class: "row" },
      el("a", { class: "title", href: `/dispatch/case?id=${item.id}`, onclick: () => markSeen(item) }, title),
      fresh ? el("span", { class: "badge fresh-mark" }, "Новая") : null,
      item.resends > 0 ? el("span", { class: "badge resends", title: "Сколько раз тревога пришла повторно" },
        `Повтор ×${item.resends}`) : null,
      el("span", { class: "badge" }, STATES[item.status] || item.status),
      item.silent ? el("span", { class: "badge bad" }, "Тихая") : null),
    el("div", {}, item.address),
    el("div", { class: "facts" },
      el("span", {}, `Зона: ${item.zone_name || item.zone || "—"}`),
      el("span", {}, `Код ${item.contact_id}: ${contactName(item.contact_id)}`),
      el("span", {}, `Открыта ${when(item.opened_at)}`)));
}

function render() {
  const open = [...cases.values()].filter((c) => c.status !== "closed");
  // The most urgent first: not acknowledged before acknowledged, then the most re-sent, then the newest.
  open.sort((a, b) => (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1)
    || b.resends - a.resends || b.id - a.id);
  $("#queue").replaceChildren(...open.map(row));
  $("#count").textContent = String(open.length);
  $("#empty").classList.toggle("hidden", open.length > 0);
}

function update(item, live) {
  const before = cases.get(item.id);
  cases.set(item.id, item);
  const alarming = item.status === "open" && (!before ? live && !isSeen(item) : item.resends > before.resends);
  if (alarming) {
    chime();
    say(before ? `Повторная тревога № ${item.id}: ${item.address}` : `Новая тревога № ${item.id}: ${item.address}`, "error");
  }
}

let live = false;  // the first batch is the queue as it was: no sound for each of those
async function resync() {
  const page = await api("/dispatch/cases?state=active&limit=200");
  cases.clear();
  for (const item of page.items) cases.set(item.id, item);
  render();
}

openStream("/api/v1/dispatch/stream", (message) => {
  if (message.type === "resync") {
    resync().catch((error) => say(error.message, "error"));
  } else if (message.type === "position") {
    live = true;
  } else if (message.type === "case") {
    update(message.case, live);
    render();
  }
}, (state) => {
  const link = $("#link");
  link.textContent = state === "online" ? "На связи" : "Нет связи";
  link.className = `badge ${state === "online" ? "ok" : "bad"}`;
  if (state === "offline") live = true;  // what the resumed stream brings is news
});
addEventListener("storage", render);  // seen in another tab
addEventListener("pageshow", render);  // back from a case page
