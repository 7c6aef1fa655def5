// Family and guests (the owner only): members with their own login and per-home permissions —
// invite, list, change, remove — and the guest passes (family-passes.js). A member is told
// that only the contract's owner manages these.
import { api, ApiError } from "/static/api.js";
import { el, say } from "/static/ui.js";
import { startPage } from "/app/shell.js";
import { confirmed } from "/app/family-dialog.js";
import { passesSection } from "/app/family-passes.js";

const PERMISSIONS = [["cameras", "Камеры"], ["arm", "Охрана"], ["intercom", "Домофон"], ["gates", "Ворота и двери"]];
const page = await startPage({ title: "Семья и гости", active: "family" });
const homes = page.me.homes;

/** One fieldset per home with a check box per permission, named `<home>:<permission>`. */
function grantsFields(granted = {}) {
  return homes.map((home) => el("fieldset", { dataset: { home: home.id } },
    el("legend", {}, homes.length > 1 ? home.address : "Что можно"),
    el("div", { class: "checks" }, PERMISSIONS.map(([key, label]) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: `${home.id}:${key}`, checked: (granted[home.id] || []).includes(key) }),
      label)))));
}

function grantsOf(root) {
  const out = {};
  for (const home of homes) {
    out[home.id] = PERMISSIONS.map(([key]) => key)
      .filter((key) => root.querySelector(`input[name="${CSS.escape(`${home.id}:${key}`)}"]`).checked);
  }
  return out;
}

function failed(error, messages = {}) {
  if (!(error instanceof ApiError)) throw error;
  say(messages[error.status] || error.message, "error");
}

function memberItem(member, redraw) {
  const who = member.name ? `${member.name} (${member.login})` : member.login;
  const form = el("form", { class: "stack", "aria-label": `Права: ${who}` }, grantsFields(member.permissions),
    el("div", { class: "row" },
      el("button", { type: "submit", "aria-label": `Сохранить права: ${who}` }, "Сохранить права"),
      el("button", { type: "button", class: "danger", "aria-label": `Удалить: ${who}`, onclick: remove }, "Удалить")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/members/${member.id}`, { method: "PATCH", body: { permissions: grantsOf(form) } });
      say(`Права сохранены: ${who}`, "ok");
    } catch (error) {
      failed(error);
    }
  });
  async function remove() {
    if (!(await confirmed(`Удалить ${who}? Вход под этим логином сразу перестанет работать.`, "Удалить"))) return;
    try {
      await api(`/members/${member.id}`, { method: "DELETE" });
      say(`Удалён: ${who}`, "ok");
      await redraw();
    } catch (error) {
      failed(error);
    }
  }
  return el("li", { dataset: { member: String(member.id) } },
    el("div", { class: "item-head" }, el("strong", {}, member.name || member.login), el("span", { class: "muted" }, member.login)),
    form);
}

function membersSection() {
  const list = el("ul", { class: "list", id: "members" });
  const none = el("p", { class: "muted hidden", id: "members-empty" }, "Пока никого не пригласили.");
  const invite = el("form", { class: "form", id: "invite", novalidate: true },
    el("label", {}, "Логин: телефон или e-mail",
      el("input", { name: "login", autocomplete: "off", required: true, placeholder: "+79130000000 или name@example.ru" })),
    el("label", {}, "Имя", el("input", { name: "name", autocomplete: "off", maxlength: "64" })),
    el("label", {}, "Пароль", el("input", { name: "password", type: "password", autocomplete: "new-password", minlength: "8", required: true })),
    grantsFields(),
    el("div", { class: "row" }, el("button", { type: "submit", class: "primary" }, "Пригласить")));

  async function draw() {
    try {
      const members = await api("/members");
      list.replaceChildren(...members.map((m) => memberItem(m, draw)));
      none.classList.toggle("hidden", members.length > 0);
    } catch (error) {
      failed(error);
    }
  }

  invite.addEventListener("submit", async (event) => {
    event.preventDefault();
    const login = invite.login.value.trim();
    if (!/^\+[0-9]{10,15}$/.test(login) && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(login)) {
      return say("Логин — телефон в виде +79130000000 или адрес e-mail", "error");
    }
    if (invite.password.value.length < 8) return say("Пароль должен быть не короче 8 символов", "error");
    const body = { login, password: invite.password.value, permissions: grantsOf(invite) };
    if (invite.name.value.trim()) body.name = invite.name.value.trim();
    try {
      await api("/members", { method: "POST", body });
      invite.reset();
      say(`Приглашён: ${body.name || login}. Передайте ему логин и пароль.`, "ok");
      await draw();
    } catch (error) {
      failed(error, { 409: "Этот логин уже занят", 422: "Проверьте логин, имя и пароль" });
    }
  });

  const section = el("section", { class: "card stack", "aria-labelledby": "members-title" },
    el("h2", { id: "members-title" }, "Члены семьи"), list, none,
    el("h3", {}, "Пригласить"), invite);
  return { section, draw };
}

if (page.me.role !== "owner") {
  page.main.append(el("p", { class: "card", id: "owner-only" },
    "Приглашать членов семьи и выдавать гостевые пропуска может только владелец договора. Обратитесь к нему."));
} else {
  const members = membersSection();
  const passes = passesSection(page);
  page.main.append(members.section, passes.section);
  await Promise.all([members.draw(), passes.draw()]);
}
