// The home page: security, sensors, cameras and gates of the chosen home, kept live from the
// page's stream (shell.js re-dispatches it as "moydom:message"). Each section is its own module;
// this one only lays them out and re-draws them when the user picks another home.
import { api } from "/static/api.js";
import { el, say } from "/static/ui.js";
import { startPage } from "/app/shell.js";
import { securityCard } from "/app/home-security.js";
import { sensorsCard } from "/app/home-sensors.js";
import { camerasCard } from "/app/home-cameras.js";
import { gatesCard } from "/app/home-gates.js";

const page = await startPage({ title: "Главная", active: "home" });
const sections = el("div", { class: "stack", id: "home" });
page.main.append(sections);

let stops = [];
let drawing = 0;

async function draw() {
  // A home picked while the first draw still waits for /devices starts a second draw: only the
  // newest one may lay out the page (two would both append their cards).
  const mine = ++drawing;
  let devices = [];
  let failed = null;
  if (page.home) {
    try {
      devices = (await api("/devices")).filter((d) => d.home === page.home.id);
    } catch (error) {
      failed = error;
    }
  }
  if (mine !== drawing) return;
  stops.forEach((stop) => stop());
  stops = [];
  sections.replaceChildren();
  if (!page.home) {
    sections.append(el("p", { class: "card" }, "Нет доступных домов. Обратитесь к владельцу договора."));
    return;
  }
  if (failed) {
    say(failed.message, "error");
    return;
  }
  const context = { home: page.home, zone: page.zone, devices };
  for (const make of [securityCard, gatesCard, sensorsCard, camerasCard]) {
    const { card, stop } = make(context);
    if (card) sections.append(card);
    if (stop) stops.push(stop);
  }
}

window.addEventListener("homechange", draw);
await draw();
