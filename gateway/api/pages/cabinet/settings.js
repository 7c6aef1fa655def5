// Settings: where and how the contract is told of each class of event (GET/PUT
// /me/notifications: in the app, e-mail, SMS, push — or nothing), the addresses e-mail and SMS
// go to, push on this device, and the way to change the password. Push (its column and the
// switch) is offered only where the gateway serves cabinet/push.js, which comes with it.
import { api, ApiError } from "/static/api.js";
import { el, $, say } from "/static/ui.js";
import { startPage } from "/app/shell.js";

const CATEGORIES = [
  ["alarm", "Тревога"], ["leak", "Протечка"], ["trouble", "Неисправности"],
  ["security", "Охрана: постановка и снятие"], ["intercom", "Звонки домофона"], ["gate", "Ворота и двери"],
];
const page = await startPage({ title: "Настройки", active: "settings" });
const pushModule = await import("/app/push.js").catch(() => null);
const CHANNELS = [["app", "В приложении"], ["email", "E-mail"], ["sms", "SMS"]];
if (pushModule) CHANNELS.push(["push", "Push"]);

$("#account").textContent = page.me.role === "owner"
  ? `Договор ${page.me.contract}`
  : `Логин ${page.me.login} (член семьи, договор ${page.me.contract})`;

/** One group per event class, a check box per channel; none checked reads «не сообщать». */
function choices(channels) {
  return el("div", { class: "stack", id: "channels" }, CATEGORIES.map(([key, label]) => {
    const chosen = channels[key] || [];
    const none = el("span", { class: "muted none", dataset: { category: key } }, chosen.length ? "" : "не сообщать");
    const group = el("fieldset", { dataset: { category: key } },
      el("legend", {}, label, " ", none),
      el("div", { class: "checks" }, CHANNELS.map(([channel, name]) => el("label", { class: "check" },
        el("input", { type: "checkbox", name: `${key}:${channel}`, checked: chosen.includes(channel), "aria-label": `${label}: ${name}` }),
        name))));
    group.addEventListener("change", () => {
      none.textContent = group.querySelector("input:checked") ? "" : "не сообщать";
    });
    return group;
  }));
}

async function notifications() {
  let current;
  try {
    current = await api("/me/notifications");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 403) {
      page.main.append(el("p", { class: "card", id: "owner-only" }, "Уведомления договора настраивает его владелец."));
      return;
    }
    return say(error.message, "error");
  }
  const form = el("form", { class: "card stack", id: "notifications", "aria-labelledby": "notify-title", novalidate: true },
    el("h2", { id: "notify-title" }, "Уведомления"),
    el("p", { class: "muted" }, "Как сообщать о каждом виде событий. Ничего не отмечено — не сообщать."),
    choices(current.channels),
    el("h3", {}, "Куда присылать"),
    el("div", { class: "form" },
      el("label", {}, "E-mail", el("input", { name: "email", type: "email", autocomplete: "email", value: current.email || "" })),
      el("label", {}, "Телефон для SMS", el("input", { name: "phone", type: "tel", autocomplete: "tel", placeholder: "+79130000000", value: current.phone || "" }))),
    el("div", { class: "row" }, el("button", { type: "submit", class: "primary" }, "Сохранить")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const channels = {};
    for (const [key] of CATEGORIES) {
      // Channels this page does not know (e.g. added later) are kept as they were.
      const other = (current.channels[key] || []).filter((c) => !CHANNELS.some(([known]) => known === c));
      channels[key] = [...CHANNELS.map(([c]) => c).filter((c) => form.elements[`${key}:${c}`].checked), ...other];
    }
    const body = { channels, email: form.email.value.trim() || null, phone: form.phone.value.trim() || null };
    if (body.email && !/^[^@\s]+@[^@\s]+$/.test(body.email)) return say("Проверьте адрес e-mail", "error");
    if (body.phone && !/^\+?[0-9]{5,15}$/.test(body.phone)) return say("Телефон — только цифры, например +79130000000", "error");
    try {
      current = await api("/me/notifications", { method: "PUT", body });
      say("Настройки уведомлений сохранены", "ok");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say(error.status === 422 ? "Проверьте e-mail и телефон" : error.message, "error");
    }
  });
  $("#push").before(form);
}

/** The push switch on this device: "on", "off", "denied" or "unsupported" (push.js). */
async function push(module) {
  const box = $("#push-switch");
  const note = $("#push-note");
  const state = async () => {
    let now;
    try {
      now = await module.pushState();
    } catch (error) {
      now = "unknown";
      note.textContent = error.message || "Не удалось узнать, включены ли push-уведомления";
    }
    box.checked = now === "on";
    box.disabled = now === "unsupported" || now === "denied";
    if (now === "denied") note.textContent = "Уведомления запрещены в настройках браузера.";
    else if (now === "unsupported") note.textContent = "Этот браузер не умеет push-уведомления.";
    else if (now !== "unknown") note.textContent = "";
  };
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      await (box.checked ? module.enablePush() : module.disablePush());
      say(box.checked ? "Push-уведомления включены" : "Push-уведомления выключены", "ok");
    } catch (error) {
      say(error.message || "Не удалось изменить push-уведомления", "error");
    }
    await state();
  });
  $("#push").classList.remove("hidden");
  await state();
}

await Promise.all([notifications(), pushModule ? push(pushModule) : null]);
