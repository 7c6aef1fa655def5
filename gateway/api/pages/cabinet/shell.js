// The frame of every «Мой дом» cabinet page (except login/forgot, which need no login).
//
// Interface (stable; other cabinet pages rely on it):
//
//   import { startPage } from "/app/shell.js";
//   const page = await startPage({ title: "История", active: "history" });
//   // page.me   — GET /api/v1/me ({contract, role, login, homes: [{id, address, time_zone?}], permissions})
//   // page.home — the chosen home (one of page.me.homes) or null when the login reaches none
//   // page.zone — page.home.time_zone, or "Asia/Novosibirsk" when the home has none
//   // page.main — the page's <main> (the one in the HTML if there is one, else a new one);
//   //             #status (role=status, for ui.js `say`) is kept as its first child
//
//   page.restream(fn) — await fn() with the page's stream closed, then reopen it with the token
//             stored by then: for a request that ends this login's other sessions and answers a
//             new token (POST /me/password), whose end of the old stream would log the page out.
//
//   `active` is one of "home", "history", "family", "settings" (the nav entry marked current).
//   Events on window:
//     "homechange"      — detail {home, zone}: the user picked another home (page.home/zone are
//                         already updated; the choice is remembered in localStorage);
//     "moydom:message"  — detail: each message of the page's one /api/v1/stream WebSocket
//                         (including {type: "resync"} after the server dropped a slow page);
//     "moydom:online"   — detail: true/false when the stream connects or drops.
//   The shell also registers /app/sw.js (scope /app/) and loads /app/ring.js (the incoming-call
//   overlay) on every page; both are optional and a failure is ignored.
import { api, token, toLogin } from "/static/api.js";
import { openStream } from "/static/stream.js";
import { el, $ } from "/static/ui.js";

export const DEFAULT_ZONE = "Asia/Novosibirsk";
const HOME_KEY = "moydom-home";

const NAV = [
  ["home", "Главная", "/app/"],
  ["history", "История", "/app/history"],
  ["family", "Семья и гости", "/app/family"],
  ["settings", "Настройки", "/app/settings"],
];

/** The home's IANA zone, Novosibirsk until the home carries one. */
export function zoneOf(home) {
  return (home && home.time_zone) || DEFAULT_ZONE;
}

/** Forget the login on this device and go to the login page. */
export function logout() {
  token.clear();
  location.assign("/app/login");
}

function chooseHome(homes) {
  const saved = localStorage.getItem(HOME_KEY);
  return homes.find((h) => h.id === saved) || homes[0] || null;
}

function homePicker(page) {
  const homes = page.me.homes;
  if (homes.length < 2) {
    return homes.length ? el("span", { class: "home-name" }, homes[0].address) : null;
  }
  const select = el(
    "select",
    {
      id: "home-picker",
      "aria-label": "Дом",
      onchange: () => {
        const home = homes.find((h) => h.id === select.value);
        localStorage.setItem(HOME_KEY, home.id);
        page.home = home;
        page.zone = zoneOf(home);
        window.dispatchEvent(new CustomEvent("homechange", { detail: { home, zone: page.zone } }));
      },
    },
    homes.map((h) => el("option", { value: h.id, selected: page.home && h.id === page.home.id }, h.address)),
  );
  return select;
}

function header(page, active) {
  const links = NAV.map(([key, label, href]) =>
    el("a", { href, "aria-current": key === active ? "page" : undefined }, label));
  const out = el("button", { type: "button", class: "link", onclick: logout }, "Выйти");
  return el("header", { class: "bar" },
    el("h1", {}, el("a", { href: "/app/", class: "brand" }, "Мой дом")),
    homePicker(page),
    el("nav", { class: "tabs", "aria-label": "Разделы" }, links, out));
}

function offlineBanner() {
  const banner = el("div", { class: "offline-banner hidden", role: "alert", id: "offline" }, "Нет связи");
  let streamUp = true;
  const update = () => banner.classList.toggle("hidden", navigator.onLine && streamUp);
  window.addEventListener("online", update);
  window.addEventListener("offline", update);
  window.addEventListener("moydom:online", (event) => { streamUp = event.detail; update(); });
  update();
  return banner;
}

function extras() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }
  import("/app/ring.js").catch(() => {});
}

/**
 * Require a login, draw the frame and open the stream; see the header for what it returns.
 * `title` names the page in the document title («title — Мой дом»).
 */
export async function startPage({ title, active } = {}) {
  if (!token.get()) {
    toLogin();
    return new Promise(() => {}); // the page is leaving
  }
  document.title = title ? `${title} — Мой дом` : "Мой дом";
  const me = await api("/me");
  const home = chooseHome(me.homes);
  const page = { me, home, zone: zoneOf(home), main: $("main") || el("main", { id: "main" }) };
  if (!page.main.isConnected) document.body.append(page.main);
  let status = $("#status");
  if (!status) status = el("div", { id: "status", role: "status", "aria-live": "polite" });
  page.main.prepend(status);
  document.body.prepend(header(page, active), offlineBanner());
  const connect = () => openStream(
    "/api/v1/stream",
    (message) => window.dispatchEvent(new CustomEvent("moydom:message", { detail: message })),
    (state) => window.dispatchEvent(new CustomEvent("moydom:online", { detail: state === "online" })),
  );
  // Every login has the stream; a member's carries the homes they hold a permission in,
  // and rings only where they hold «intercom».
  let close = connect();
  page.restream = async (fn) => {
    close();
    try {
      return await fn();
    } finally {
      close = connect();
    }
  };
  extras();
  return page;
}
