// The camera page (/app/camera?id=<device>): live view over WHEP with sound behind a mute button
// (it starts muted, so the browser lets it play without a tap), and the archive below it
// (camera-archive.js). Another contract's camera is not in /devices: the page says so and asks
// nothing more.
import { api } from "/static/api.js";
import { el, say } from "/static/ui.js";
import { startPage, zoneOf } from "/app/shell.js";
import { watch } from "/app/whep.js";
import { archiveCard, exportCard } from "/app/camera-archive.js";

const STATES = {
  new: "подключение…", connecting: "подключение…", connected: "в эфире",
  disconnected: "связь прервалась", failed: "нет связи с камерой", closed: "остановлено",
};

const page = await startPage({ title: "Камера", active: "home" });
const id = new URLSearchParams(location.search).get("id") || "";
const devices = await api("/devices").catch((error) => { say(error.message, "error"); return []; });
const camera = devices.find((d) => d.kind === "camera" && d.id === id);

function liveCard() {
  const video = el("video", { id: "live", autoplay: true, muted: true, playsinline: true, "aria-label": `Камера «${camera.name}» в реальном времени` });
  video.muted = true; // the attribute alone does not mute a srcObject that arrives later
  const state = el("span", { id: "live-state", class: "badge" }, STATES.new);
  const mute = el("button", { type: "button", id: "mute", class: "primary" }, "Включить звук");
  mute.addEventListener("click", () => {
    video.muted = !video.muted;
    mute.textContent = video.muted ? "Включить звук" : "Выключить звук";
    video.play().catch(() => {});
  });
  const card = el("section", { class: "card", "aria-labelledby": "live-title" },
    el("h2", { id: "live-title" }, camera.name),
    el("div", { class: "camera-frame" }, video),
    el("div", { class: "row" }, mute, state));
  let session = null;
  (async () => {
    try {
      session = await watch(`/cameras/${encodeURIComponent(camera.id)}/whep`, {
        onState: (s) => { state.textContent = STATES[s] || s; state.dataset.state = s; },
      });
      video.srcObject = session.stream;
    } catch (error) {
      state.textContent = error.status === 503 ? "камера не отвечает" : error.message;
    }
  })();
  addEventListener("pagehide", () => session && session.close());
  return card;
}

if (!camera) {
  say("Камера не найдена", "error");
} else {
  document.title = `${camera.name} — Мой дом`;
  const home = page.me.homes.find((h) => h.id === camera.home) || page.home;
  const context = { camera, zone: zoneOf(home) };
  const exporter = exportCard(context);
  page.main.append(liveCard(), archiveCard(context, exporter), exporter.card);
}
