// Guest passes on the family page: create one for chosen gates and doors, a window (in the
// home's time zone) and a number of uses; its link (/app/guest#t=<token>, shown only once, as
// the API shows the token only once) with copy and share; the list with uses left; revoke.
import { api, ApiError } from "/static/api.js";
import { el, say, when } from "/static/ui.js";
import { confirmed } from "/app/family-dialog.js";
import { midnight } from "/app/history-feed.js";

const OPENABLE = new Set(["gate", "intercom"]);
const HOUR = 3600 * 1000;

/** "YYYY-MM-DDTHH:MM" of `at` on the wall clock of `zone` (a datetime-local value). */
function local(at, zone) {
  const text = new Intl.DateTimeFormat("sv-SE", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).format(at);
  return text.replace(" ", "T");
}

/** The instant a datetime-local value names on the wall clock of `zone`. */
function instant(value, zone) {
  const [day, time] = value.split("T");
  const [h, m] = time.split(":").map(Number);
  return new Date(midnight(day, zone).getTime() + (h * 60 + m) * 60 * 1000);
}

function state(p) {
  if (p.revoked_at) return ["Отозван", "bad"];
  if (p.uses >= p.max_uses) return ["Использован", "bad"];
  if (new Date(p.valid_to) <= new Date()) return ["Истёк", "bad"];
  if (new Date(p.valid_from) > new Date()) return ["Ещё не начал действовать", "warn"];
  return ["Действует", "ok"];
}

function linkBox(link) {
  const input = el("input", { readonly: true, value: link, id: "pass-link", "aria-label": "Ссылка для гостя" });
  const copy = el("button", { type: "button", class: "primary" }, "Копировать ссылку");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link);
    } catch {
      input.select(); // no clipboard permission: leave it selected for the user to copy
      return say("Скопируйте ссылку вручную", "");
    }
    say("Ссылка скопирована", "ok");
  });
  const buttons = [copy];
  if (navigator.share) {
    buttons.push(el("button", {
      type: "button",
      onclick: () => navigator.share({ title: "Пропуск «Мой дом»", url: link }).catch(() => {}),
    }, "Отправить"));
  }
  return el("div", { class: "link-box", id: "pass-created" },
    el("p", {}, "Ссылка показывается только сейчас — отправьте её гостю:"), input, el("div", { class: "row" }, buttons));
}

export function passesSection(page) {
  const zone = page.zone;
  const list = el("ul", { class: "list", id: "passes" });
  const none = el("p", { class: "muted hidden", id: "passes-empty" }, "Пропусков нет.");
  const created = el("div", {});
  const gates = el("fieldset", { id: "pass-gates" }, el("legend", {}, "Что откроет пропуск"));
  const now = new Date();
  const form = el("form", { class: "form", id: "new-pass", novalidate: true },
    el("label", {}, "Для кого", el("input", { name: "name", required: true, maxlength: "64", placeholder: "курьер" })),
    el("label", {}, "Действует с", el("input", { name: "from", type: "datetime-local", required: true, value: local(now, zone) })),
    el("label", {}, "Действует до", el("input", { name: "to", type: "datetime-local", required: true, value: local(new Date(now.getTime() + 24 * HOUR), zone) })),
    el("label", {}, "Сколько раз", el("input", { name: "uses", type: "number", min: "1", max: "1000", value: "1", required: true })),
    gates,
    el("div", { class: "row" }, el("button", { type: "submit", class: "primary" }, "Создать пропуск")));
  let devices = [];

  const address = (id) => (page.me.homes.find((h) => h.id === id) || {}).address;

  function item(p) {
    const [text, kind] = state(p);
    const valid = kind !== "bad";
    const revoke = el("button", { type: "button", class: "danger", "aria-label": `Отозвать пропуск: ${p.name}` }, "Отозвать");
    revoke.addEventListener("click", async () => {
      if (!(await confirmed(`Отозвать пропуск «${p.name}»? Ссылка сразу перестанет работать.`, "Отозвать"))) return;
      try {
        await api(`/passes/${p.id}`, { method: "DELETE" });
        say(`Пропуск «${p.name}» отозван`, "ok");
        await draw();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        say(error.message, "error");
      }
    });
    return el("li", { dataset: { pass: String(p.id) } },
      el("div", { class: "item-head" }, el("strong", {}, p.name), el("span", { class: `badge ${kind}` }, text)),
      el("div", { class: "facts" },
        el("span", {}, p.devices.map((d) => d.name).join(", ")),
        el("span", {}, `${when(p.valid_from, zone)} — ${when(p.valid_to, zone)}`),
        el("span", { class: "uses" }, `Осталось ${Math.max(p.max_uses - p.uses, 0)} из ${p.max_uses}`)),
      valid ? el("div", { class: "row" }, revoke) : null);
  }

  async function draw() {
    try {
      devices = (await api("/devices")).filter((d) => OPENABLE.has(d.kind));
      gates.replaceChildren(el("legend", {}, "Что откроет пропуск"), devices.length
        ? el("div", { class: "checks" }, devices.map((d) => el("label", { class: "check" },
          el("input", { type: "checkbox", name: "device", value: d.id }),
          page.me.homes.length > 1 ? `${d.name} (${address(d.home)})` : d.name)))
        : el("p", { class: "muted" }, "В доме нет ворот и дверей, которые можно открыть."));
      const passes = (await api("/passes")).items;
      list.replaceChildren(...passes.map(item));
      none.classList.toggle("hidden", passes.length > 0);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say(error.message, "error");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input[name=device]:checked")].map((box) => box.value);
    if (!form.name.value.trim()) return say("Укажите, для кого пропуск", "error");
    if (!chosen.length) return say("Выберите, что откроет пропуск", "error");
    if (!form.from.value || !form.to.value) return say("Укажите срок действия", "error");
    const from = instant(form.from.value, zone);
    const to = instant(form.to.value, zone);
    if (to <= from || to <= new Date()) return say("Окончание срока должно быть позже начала и в будущем", "error");
    const uses = Number(form.uses.value);
    if (!Number.isInteger(uses) || uses < 1 || uses > 1000) return say("Число использований — от 1 до 1000", "error");
    try {
      const made = await api("/passes", {
        method: "POST",
        body: { name: form.name.value.trim(), devices: chosen, valid_from: from.toISOString(), valid_to: to.toISOString(), max_uses: uses },
      });
      created.replaceChildren(linkBox(`${location.origin}/app/guest#t=${made.token}`));
      say(`Пропуск «${made.name}» создан`, "ok");
      await draw();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say(error.status === 422 ? "Проверьте срок и число использований (не больше года)" : error.message, "error");
    }
  });

  const section = el("section", { class: "card stack", "aria-labelledby": "passes-title" },
    el("h2", { id: "passes-title" }, "Гостевые пропуска"),
    el("p", { class: "muted" }, "Пропуск открывает только выбранные ворота и двери — ни камер, ни истории."),
    created, list, none, el("h3", {}, "Новый пропуск"), form);
  return { section, draw };
}
