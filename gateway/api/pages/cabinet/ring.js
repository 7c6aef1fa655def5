// The incoming intercom call on every cabinet page (shell.js imports this module): a call
// message of the page's stream ({type: "call", call, ring, notice?}) that rings opens a modal
// dialog with the panel's live video (the call's WHEP), a ringtone and vibration; «Ответить»
// takes the call and puts the microphone on the call's audio, «Открыть дверь» opens the panel's
// door and shows its answer, «Отклонить» / «Завершить» end it. A call answered elsewhere
// («отвечено»), missed or ended closes the dialog with a short notice in the page's status.
import { api, ApiError } from "/static/api.js";
import { $, el, say, when } from "/static/ui.js";
import { watch } from "/app/whep.js";
import { zoneOf } from "/app/shell.js";

const RECENT_MS = 120_000; // a page opened while a call rings shows it, if it is this fresh
const VIBRATE = [400, 200, 400, 1000];
const ENDED = { missed: "пропущенный вызов", declined: "вызов отклонён", ended: "вызов завершён" };
const DOOR = {
  sent: "Дверь: ждём ответа…",
  acknowledged: "Дверь открыта",
  refused: "Дверь: отказ",
  failed: "Дверь: отказ",
  expired: "Дверь: нет ответа",
};

let current = null;

document.head.append(el("link", { rel: "stylesheet", href: "/app/call-dialog.css" }));

function callPath(call, action = "") {
  return `/calls/${encodeURIComponent(call.id)}${action}`;
}

function ring(call) {
  const before = document.activeElement;
  const video = el("video", { id: "call-video", autoplay: true, muted: true, playsinline: true, "aria-label": "Видео с домофона" });
  video.muted = true;
  const tone = el("audio", { src: "/app/ring.wav", loop: true });
  const status = el("p", { id: "call-status", role: "status" }, "Звонят в дверь");
  const answer = el("button", { type: "button", class: "primary" }, "Ответить");
  const door = el("button", { type: "button" }, "Открыть дверь");
  const decline = el("button", { type: "button", class: "danger" }, "Отклонить");
  const hangup = el("button", { type: "button", class: "danger hidden" }, "Завершить");
  const dialog = el("dialog", { id: "call", class: "call", "aria-labelledby": "call-title", "aria-describedby": "call-about" },
    el("h2", { id: "call-title" }, "Звонок в домофон"),
    el("p", { id: "call-about" }, `${call.panel_name}, кв. ${call.flat}`),
    el("div", { class: "call-video" }, video), status,
    el("div", { class: "call-actions" }, answer, door, decline, hangup), tone);
  document.body.append(dialog);
  const state = { id: call.id, call, dialog, answering: false, answered: false, session: null, mic: null, doorCommand: null };
  current = state;
  dialog.showModal();
  answer.focus();
  tone.play().catch(() => {}); // without a tap the browser may refuse: the dialog still shows
  const buzz = navigator.vibrate ? setInterval(() => navigator.vibrate(VIBRATE), 2000) : null;
  if (navigator.vibrate) navigator.vibrate(VIBRATE);
  state.quiet = () => {
    tone.pause();
    if (buzz) clearInterval(buzz);
    if (navigator.vibrate) navigator.vibrate(0);
  };
  state.finish = (notice) => {
    state.quiet();
    if (state.session) state.session.close();
    if (state.mic) state.mic.getTracks().forEach((t) => t.stop());
    dialog.close();
    dialog.remove();
    if (current === state) current = null;
    if (before && before.isConnected) before.focus();
    if (notice) say(`Домофон: ${notice}`);
  };
  state.status = status;
  api("/me").then((me) => { // the time in the called home's zone
    const home = me.homes.find((h) => h.id === call.home);
    $("#call-about", dialog).append(`, ${when(call.started_at, zoneOf(home))}`);
  }).catch(() => {});

  watch(callPath(call, "/whep"), { talk: true })
    .then((session) => {
      if (current !== state) { session.close(); return; }
      state.session = session;
      video.srcObject = session.stream;
    })
    .catch((error) => { if (current === state) status.textContent = `Видео недоступно: ${error.message}`; });

  answer.addEventListener("click", async () => {
    state.answering = true;
    answer.disabled = decline.disabled = true;
    try {
      await api(callPath(call, "/answer"), { method: "POST", body: {} });
    } catch (error) {
      state.answering = false;
      state.finish(error instanceof ApiError && error.status === 409 ? "отвечено на другом устройстве" : error.message);
      return;
    }
    state.answered = true;
    state.quiet();
    answer.classList.add("hidden");
    decline.classList.add("hidden");
    hangup.classList.remove("hidden");
    hangup.focus();
    video.muted = false;
    status.textContent = "Разговор";
    try {
      state.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      if (current !== state) { state.mic.getTracks().forEach((t) => t.stop()); return; }
      const track = state.mic.getAudioTracks()[0];
      if (state.session) await state.session.speak(track);
      else status.textContent = "Разговор без видео и звука";
    } catch {
      status.textContent = "Разговор: микрофон недоступен, вас не слышно";
    }
  });
  decline.addEventListener("click", () => act("/decline", ENDED.declined));
  hangup.addEventListener("click", () => act("/hangup", ENDED.ended));
  door.addEventListener("click", async () => {
    status.textContent = DOOR.sent;
    try {
      const command = await api(callPath(call, "/open"), { method: "POST" });
      state.doorCommand = command.id;
      status.textContent = DOOR[command.status] || command.status;
    } catch (error) {
      status.textContent = `Дверь: ${error.message}`;
    }
  });
  dialog.addEventListener("cancel", (event) => {
    if (state.answered) event.preventDefault(); // Esc does not drop a conversation
    else state.finish(); // Esc only silences this page; the call rings on elsewhere
  });

  async function act(action, notice) {
    try {
      await api(callPath(call, action), { method: "POST" });
      state.finish(notice);
    } catch (error) {
      status.textContent = error.message;
    }
  }
}

function heard(message) {
  if (message.type === "resync") { ringing(); return; }
  if (message.type === "event" && current && current.doorCommand) {
    const body = message.event.body || {};
    if (message.event.event === "command" && body.command_id === current.doorCommand && body.status !== "sent") {
      current.status.textContent = DOOR[body.status] || body.status;
    }
    return;
  }
  if (message.type !== "call") return;
  const call = message.call;
  if (message.ring) {
    if (!current) ring(call);
    return;
  }
  if (!current || current.id !== call.id) return;
  if (call.state === "answered") {
    if (!current.answering && !current.answered) {
      current.finish(`${message.notice || "отвечено"}${call.answered_by ? ` (${call.answered_by})` : ""}`);
    }
    return;
  }
  current.finish(ENDED[call.state] || call.state);
}

/** A call that rang before this page's stream opened. */
async function ringing() {
  try {
    const page = await api("/calls?state=ringing&limit=5");
    const fresh = page.items.find((c) => Date.now() - Date.parse(c.started_at) < RECENT_MS);
    if (fresh && !current) ring(fresh);
  } catch {
    // a login without the intercom permission, or offline: the stream still rings
  }
}

addEventListener("moydom:message", (event) => heard(event.detail));
ringing();
