// The guest's own page (/app/guest#t=<token>), no login: the pass's window, the uses left and
// one button per gate or door it opens — nothing else. The token lives in the URL's fragment,
// which the browser never sends, so the page's own address gives nothing away; only the guest
// routes of the API (/api/v1/guest/<token>) receive it. An unknown, expired, used-up or
// revoked pass is one answer there (404), shown as «Пропуск недействителен».
import { api, ApiError } from "/static/api.js";
import { el, $, say, when } from "/static/ui.js";

const ZONE = "Asia/Novosibirsk"; // the guest API names no home, so no home's zone
const ANSWER = {
  acknowledged: "Открыто",
  sent: "Команда отправлена, ждём ответа",
  refused: "Отказ: не открылось",
  failed: "Отказ: не открылось",
  expired: "Нет ответа от ворот",
};
const card = $("#pass");
const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
const base = `/guest/${encodeURIComponent(token)}`;

function invalid() {
  card.replaceChildren(el("h2", { id: "pass-title" }, "Пропуск недействителен"),
    el("p", {}, "Срок пропуска истёк, он использован или отозван. Попросите новый у того, кто его выдал."));
}

function show(pass) {
  const buttons = pass.devices.map((d) => {
    const button = el("button", { type: "button", class: "primary gate-open", dataset: { device: d.id } }, `Открыть: ${d.name}`);
    button.addEventListener("click", () => open(d, button));
    return el("li", {}, button);
  });
  card.replaceChildren(
    el("h2", { id: "pass-title" }, pass.name),
    el("p", {}, `Действует с ${when(pass.valid_from, ZONE)} до ${when(pass.valid_to, ZONE)}`),
    el("p", { class: "big", id: "uses-left" }, `Осталось открытий: ${pass.uses_left}`),
    el("ul", { class: "list", id: "gates" }, buttons));
}

async function load() {
  if (!/^[A-Za-z0-9_-]{20,64}$/.test(token)) return invalid();
  try {
    show(await api(base, { anonymous: true }));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 404 || error.status === 422) invalid();
    else say(error.message, "error");
  }
}

async function open(device, button) {
  button.disabled = true;
  say("Открываем…");
  try {
    const answer = await api(`${base}/devices/${encodeURIComponent(device.id)}/open`, { method: "POST", anonymous: true });
    say(`${device.name}: ${ANSWER[answer.status] || answer.status}`, answer.status === "acknowledged" ? "ok" : "error");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(error.status === 404 ? "Пропуск недействителен" : error.message, "error");
  }
  await load();
}

await load();
