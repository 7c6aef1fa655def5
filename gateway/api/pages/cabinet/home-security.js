// The security card: the panel's state (GET /homes/{home}/security), arming in a mode and
// disarming with the code. The code is read from its field for one request and the field is
// cleared after it: it is never kept. Arming with open zones names them first (from the panel's
// zones) and, when the panel refuses (409 "refused: open_zones (…)"), asks to confirm a force-arm.
// An entry or exit delay counts down to the panel's deadline; the stream's security alerts and
// zone events re-read the panel.
import { api, ApiError } from "/static/api.js";
import { el, when } from "/static/ui.js";
import { debounce, listen } from "/app/home-live.js";

const STATUS = {
  disarmed: "Снята с охраны",
  arming: "Постановка на охрану",
  armed_away: "Под охраной",
  armed_home: "Под охраной (режим «Дома»)",
  armed_night: "Под охраной (ночной режим)",
  armed_vacation: "Под охраной (режим «Отпуск»)",
  pending: "Вход в охраняемую зону — введите код",
  triggered: "Тревога!",
};
const MODES = [
  ["armed_away", "Под охрану"],
  ["armed_home", "Дома"],
  ["armed_night", "Ночь"],
  ["armed_vacation", "Отпуск"],
];
const REFUSED = {
  wrong_code: "Неверный код",
  locked_out: "Слишком много неверных кодов: ввод кода временно заблокирован",
  in_alarm: "Идёт тревога или отсчёт входа: сначала снимите с охраны",
  not_ready: "Сейчас поставить на охрану нельзя",
  unknown_zone: "Неизвестная зона",
};

function stateClass(status) {
  if (status.startsWith("armed_")) return "armed";
  return status;
}

/** The refusal's reason and zone ids from a 409/403 detail like "refused: open_zones (a, b)". */
function refusal(detail) {
  const found = /^refused: ([a-z_]+)(?: \((.*)\))?$/.exec(detail || "");
  if (!found) return { reason: null, zones: [] };
  return { reason: found[1], zones: found[2] ? found[2].split(", ") : [] };
}

export function securityCard({ home, zone }) {
  const base = `/homes/${encodeURIComponent(home.id)}/security`;
  const state = el("p", { class: "state", id: "security-state" });
  const countdown = el("p", { class: "countdown hidden", id: "security-countdown", role: "timer", "aria-live": "off" });
  const openZones = el("p", { class: "hidden", id: "open-zones" });
  const message = el("p", { id: "security-message", role: "alert" });
  const code = el("input", {
    id: "security-code", type: "password", inputmode: "numeric", autocomplete: "off",
    pattern: "[0-9]{4,8}", maxlength: "8",
  });
  const confirmBox = el("div", { class: "confirm hidden", id: "force-arm" });
  const armButtons = MODES.map(([mode, label]) =>
    el("button", { type: "button", class: "primary", dataset: { mode }, onclick: () => arm(mode, false) }, label));
  const disarmButton = el("button", { type: "button", class: "danger", onclick: () => disarm() }, "Снять с охраны");
  const card = el("section", { class: "card", "aria-labelledby": "security-title" },
    el("h2", { id: "security-title" }, "Охрана"),
    state, countdown, openZones,
    el("label", { for: "security-code" }, "Код охраны"), code,
    el("div", { class: "row" }, armButtons, disarmButton),
    confirmBox, message);
  let panel = null;
  let ticker = null;

  const zoneNames = (ids) => ids.map((id) => panel?.zones.find((z) => z.id === id)?.name || id);

  function tick() {
    const left = panel?.deadline ? Math.ceil((new Date(panel.deadline) - Date.now()) / 1000) : 0;
    const counting = panel && ["pending", "arming"].includes(panel.status) && left > 0;
    countdown.classList.toggle("hidden", !counting);
    if (counting) {
      const what = panel.status === "pending" ? "До тревоги" : "До постановки";
      countdown.textContent = `${what}: ${left} с`;
    } else if (ticker) {
      clearInterval(ticker);
      ticker = null;
      if (panel && ["pending", "arming"].includes(panel.status)) refresh();
    }
  }

  function show() {
    if (state.dataset.status && state.dataset.status !== panel.status) message.textContent = "";
    state.textContent = STATUS[panel.status] || panel.status;
    state.className = `state ${stateClass(panel.status)}`;
    state.dataset.status = panel.status;
    const open = panel.zones.filter((z) => z.open && z.type !== "always");
    openZones.classList.toggle("hidden", open.length === 0);
    openZones.textContent = open.length ? `Открыто: ${open.map((z) => z.name).join(", ")}` : "";
    const armed = panel.status !== "disarmed";
    armButtons.forEach((b) => { b.disabled = armed; });
    if (panel.deadline && ["pending", "arming"].includes(panel.status)) {
      countdown.title = `до ${when(panel.deadline, zone, false)}`;
      if (!ticker) ticker = setInterval(tick, 1000);
    }
    tick();
  }

  async function refresh() {
    try {
      panel = await api(base);
      show();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const text = error.status === 404 ? "Охрана не подключена" : error.status === 403
        ? "Нет доступа к охране этого дома" : error.message;
      card.replaceChildren(el("h2", { id: "security-title" }, "Охрана"), el("p", { class: "muted" }, text));
    }
  }

  function takeCode() {
    const value = code.value.trim();
    code.value = "";
    return value;
  }

  function askForce(mode, zones, pin) {
    confirmBox.replaceChildren(
      el("p", {}, `Открыты зоны: ${zoneNames(zones).join(", ")}. Поставить на охрану с открытыми зонами?`),
      el("div", { class: "row" },
        el("button", { type: "button", class: "primary", onclick: () => arm(mode, true, pin) }, "Поставить всё равно"),
        el("button", { type: "button", onclick: () => confirmBox.classList.add("hidden") }, "Отмена")));
    confirmBox.classList.remove("hidden");
    confirmBox.querySelector("button").focus();
  }

  async function arm(mode, force, pin = takeCode()) {
    confirmBox.classList.add("hidden");
    message.textContent = "";
    const body = { mode, force };
    if (pin) body.code = pin;
    try {
      await api(`${base}/arm`, { method: "POST", body });
      await refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const { reason, zones } = refusal(error.detail);
      if (reason === "open_zones") askForce(mode, zones, pin);
      else message.textContent = REFUSED[reason] || error.message;
    }
  }

  async function disarm() {
    confirmBox.classList.add("hidden");
    const pin = takeCode();
    if (!/^[0-9]{4,8}$/.test(pin)) {
      message.textContent = "Введите код охраны: от 4 до 8 цифр";
      code.focus();
      return;
    }
    try {
      await api(`${base}/disarm`, { method: "POST", body: { code: pin } });
      await refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.textContent = REFUSED[refusal(error.detail).reason] || error.message;
    }
  }

  const later = debounce(refresh);
  const stop = listen((m) => {
    if (m.type === "resync") later();
    else if (m.type === "alert" && m.alert.home === home.id) later();
    else if (m.type === "event" && m.event.home === home.id && panel?.zones.some((z) => z.id === m.event.device)) later();
  });
  refresh();
  return { card, stop: () => { stop(); clearInterval(ticker); } };
}
