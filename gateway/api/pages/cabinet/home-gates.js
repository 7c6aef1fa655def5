// The gates card: gates, barriers and intercom doors, each opened with one tap (POST
// /homes/{home}/devices/{id}/commands). The POST waits a moment for the controller; when it
// answers «sent», the outcome comes later as the command's history event on the stream, and
// GET …/commands/{id} is asked once the deadline has passed, in case the stream missed it.
import { api, ApiError } from "/static/api.js";
import { el } from "/static/ui.js";
import { listen } from "/app/home-live.js";

const OPENABLE = { gate: "Ворота или шлагбаум", intercom: "Дверь домофона" };
const ANSWER = {
  sent: ["ждём ответа…", "sent"],
  acknowledged: ["открыто", "opened"],
  refused: ["отказ", "refused"],
  failed: ["отказ", "refused"],
  expired: ["нет ответа", "expired"],
};
const LATE_MS = 3000;

export function gatesCard({ home, devices }) {
  const gates = devices.filter((d) => d.kind in OPENABLE);
  if (!gates.length) return {};
  const base = `/homes/${encodeURIComponent(home.id)}`;
  const waiting = new Map(); // command id → {show, timer}
  const rows = gates.map((gate) => {
    const answer = el("span", { class: "answer", role: "status", dataset: { device: gate.id } });
    const button = el("button", { type: "button", class: "primary", "aria-label": `Открыть: ${gate.name}` }, "Открыть");
    button.addEventListener("click", () => open(gate, button, answer));
    return el("li", {},
      el("div", { class: "item-head" }, el("strong", {}, gate.name), answer),
      el("div", { class: "row" }, el("span", { class: "muted" }, OPENABLE[gate.kind]), button));
  });
  const card = el("section", { class: "card", "aria-labelledby": "gates-title" },
    el("h2", { id: "gates-title" }, "Ворота и двери"), el("ul", { class: "list", id: "gates" }, rows));

  function settle(id, status) {
    const wait = waiting.get(id);
    if (!wait || status === "sent") return;
    clearTimeout(wait.timer);
    waiting.delete(id);
    wait.show(status);
  }

  function check(id, deadline) {
    const wait = waiting.get(id);
    if (!wait) return;
    const due = Math.max(new Date(deadline) - Date.now(), 0) + LATE_MS;
    wait.timer = setTimeout(async () => {
      try {
        const command = await api(`${base}/commands/${encodeURIComponent(id)}`);
        if (command.status === "sent") check(id, new Date(Date.now() + LATE_MS).toISOString());
        else settle(id, command.status);
      } catch {
        check(id, new Date(Date.now() + LATE_MS).toISOString());
      }
    }, due);
  }

  async function open(gate, button, answer) {
    const show = (status) => {
      const [text, kind] = ANSWER[status] || [status, ""];
      answer.textContent = text;
      answer.className = `answer ${kind}`;
      answer.dataset.status = status;
      button.disabled = status === "sent";
    };
    show("sent");
    try {
      const command = await api(`${base}/devices/${encodeURIComponent(gate.id)}/commands`,
        { method: "POST", body: { action: "open" } });
      if (command.status !== "sent") {
        show(command.status);
        return;
      }
      waiting.set(command.id, { show, timer: null });
      check(command.id, command.deadline);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      answer.textContent = error.message;
      answer.className = "answer refused";
      button.disabled = false;
    }
  }

  const stop = listen((m) => {
    if (m.type === "event" && m.event.event === "command") settle(m.event.body.command_id, m.event.body.status);
  });
  return { card, stop: () => { stop(); waiting.forEach((w) => clearTimeout(w.timer)); } };
}
