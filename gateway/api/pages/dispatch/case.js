// One case: what happened and where, its timeline (kept current from the dispatch stream), the
// held clips played in the page, the home's cameras live, and the dispatcher's actions. Once the
// case is closed its clips and cameras are gone (the API refuses them from then on).
import { api, ApiError, requireLogin } from "/static/api.js";
import { openStream } from "/static/stream.js";
import { $, el, say, when } from "/static/ui.js";
import { ALARMS, ENTRIES, RESOLUTIONS, STATES, contactName, describe, logoutButton, markSeen } from "/dispatch/console.js";
import { watch } from "/dispatch/live.js";

requireLogin();
logoutButton($("#logout"));
const caseId = Number(new URLSearchParams(location.search).get("id"));
const watching = new Map();  // camera id -> leave()
let current = null;

function fact(term, value) {
  return [el("dt", {}, term), el("dd", {}, value)];
}

function render(item) {
  current = item;
  markSeen(item);
  document.title = `№ ${item.id} ${ALARMS[item.alarm] || item.alarm} — пульт охраны`;
  $("#title").textContent = `Тревога № ${item.id}: ${ALARMS[item.alarm] || item.alarm}`;
  const closed = item.status === "closed";
  $("#facts").replaceChildren(
    ...fact("Адрес", item.address),
    ...fact("Зона", item.zone_name || item.zone || "—"),
    ...fact("Код Contact ID", `${item.contact_id} — ${contactName(item.contact_id)}`),
    ...fact("Состояние", el("span", { class: closed ? "state-closed" : "" },
      STATES[item.status] || item.status,
      closed && item.resolution ? `: ${RESOLUTIONS[item.resolution] || item.resolution}` : "")),
    ...fact("Открыта", when(item.opened_at)),
    ...fact("Повторов", String(item.resends)),
    ...(item.silent ? fact("Тихая", "абонент не должен знать о тревоге") : []));
  $("#timeline").replaceChildren(...item.timeline.map((entry) => el("li", {},
    el("time", { datetime: entry.at }, when(entry.at, undefined, false)),
    el("strong", {}, `${ENTRIES[entry.kind] || entry.kind}. `),
    describe(entry, item), entry.author ? el("span", { class: "muted" }, ` — ${entry.author}`) : null)));
  $("#ack").disabled = item.status !== "open";
  $("#ack").textContent = item.status === "open" ? "Принять тревогу" : "Тревога принята";
  $("#actions").classList.toggle("hidden", closed);
  if (closed) endMedia();
}

function endMedia() {
  for (const leave of watching.values()) leave();
  watching.clear();
  $("#clips").replaceChildren();
  $("#cameras").replaceChildren();
  $("#no-clips").textContent = "Тревога закрыта: записи больше не доступны";
  $("#no-cameras").textContent = "Тревога закрыта: камеры больше не доступны";
  $("#no-clips").classList.remove("hidden");
  $("#no-cameras").classList.remove("hidden");
}

function clipFigure(clip) {
  const label = `Запись камеры «${clip.camera_name}» с ${when(clip.start, undefined, false)}`;
  const video = el("video", { controls: true, preload: "auto", muted: true, playsinline: true,
    src: clip.recording, poster: clip.snapshot, "aria-label": label });
  video.muted = true;
  video.addEventListener("error", () => say(`${label}: запись ещё не готова, обновите список`, "error"));
  return el("figure", { dataset: { camera: clip.camera } }, video,
    el("figcaption", {}, `${clip.camera_name}: ${when(clip.start, undefined, false)}–${when(clip.end, undefined, false)}`));
}

async function loadClips() {
  const clips = await api(`/dispatch/cases/${caseId}/clips`);
  $("#clips").replaceChildren(...clips.map(clipFigure));
  $("#no-clips").classList.toggle("hidden", clips.length > 0);
  // Signed URLs last ten minutes: renew them before, unless the case closed meanwhile.
  const renew = Math.max(60, (clips[0]?.expires_in || 600) * 0.8) * 1000;
  setTimeout(() => { if (current?.status !== "closed") loadClips().catch(() => {}); }, renew);
}

function cameraFigure(camera) {
  const video = el("video", { autoplay: true, muted: true, playsinline: true, "aria-label": `Камера «${camera.name}» в реальном времени` });
  video.muted = true;
  const state = el("span", { class: "muted" }, "");
  const button = el("button", { type: "button" }, `Смотреть «${camera.name}»`);
  button.addEventListener("click", async () => {
    if (watching.has(camera.id)) {
      watching.get(camera.id)();
      watching.delete(camera.id);
      button.textContent = `Смотреть «${camera.name}»`;
      state.textContent = "";
      return;
    }
    button.disabled = true;
    state.textContent = "Подключение…";
    try {
      watching.set(camera.id, await watch(caseId, camera.id, video, (s) => {
        state.textContent = { connected: "В эфире", failed: "Связь потеряна", closed: "Показ окончен" }[s] || "";
      }));
      button.textContent = `Остановить «${camera.name}»`;
    } catch (error) {
      state.textContent = error instanceof ApiError ? error.message : "Не удалось подключиться";
    } finally {
      button.disabled = false;
    }
  });
  return el("figure", { dataset: { camera: camera.id } }, video, el("figcaption", { class: "row" }, button, state));
}

async function loadCameras() {
  const cameras = await api(`/dispatch/cases/${caseId}/cameras`);
  $("#cameras").replaceChildren(...cameras.map(cameraFigure));
  $("#no-cameras").classList.toggle("hidden", cameras.length > 0);
}

async function act(path, body, done) {
  try {
    render(await api(`/dispatch/cases/${caseId}/${path}`, { method: "POST", body }));
    say(done, "ok");
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(error.message, "error");
    return false;
  }
}

function onSubmit(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("button[type=submit]", form);
    button.disabled = true;
    try {
      if (await handler(new FormData(form))) form.reset();
    } finally {
      button.disabled = false;
    }
  });
}

$("#ack").addEventListener("click", () => act("ack", undefined, "Тревога принята"));
onSubmit($("#team"), (data) => {
  const team = String(data.get("team")).trim();
  if (!team) { say("Укажите группу", "error"); return false; }
  return act("team", { team }, `Группа «${team}» направлена`);
});
onSubmit($("#note"), (data) => {
  const text = String(data.get("text")).trim();
  if (!text) { say("Напишите заметку", "error"); return false; }
  return act("notes", { text }, "Заметка добавлена");
});
onSubmit($("#close"), (data) => {
  const note = String(data.get("note")).trim();
  const body = { resolution: data.get("resolution"), ...(note ? { note } : {}) };
  return act("close", body, "Тревога закрыта");
});

async function start() {
  if (!Number.isInteger(caseId) || caseId < 1) {
    say("Не указан номер тревоги", "error");
    return;
  }
  try {
    render(await api(`/dispatch/cases/${caseId}`));
  } catch (error) {
    say(error instanceof ApiError ? error.message : "Нет связи с сервером", "error");
    return;
  }
  if (current.status === "closed") return;
  await Promise.all([loadClips(), loadCameras()]).catch((error) => say(error.message, "error"));
  openStream("/api/v1/dispatch/stream", (message) => {
    if (message.type === "case" && message.case.id === caseId) render(message.case);
  });
}

start();
