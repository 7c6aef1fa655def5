// The camera page's archive: a day picker, the day's timeline (recording, motion, event clips and
// the camera's outages; GET /cameras/{id}/timeline) shown whole or zoomed around what plays
// (a phone's 300 px make a day 5 minutes a pixel), a click on it (or a typed time) plays from
// there in a <video> (a signed URL of GET …/playback, an hour at most, seekable with byte
// ranges), a click inside what is loaded seeks instead; and the export of a clip with its
// progress (POST …/exports, GET /exports/{job}) ending in a download link.
import { api } from "/static/api.js";
import { el, say } from "/static/ui.js";
import { clock, dayOf, instant, nextDay } from "/app/camera-time.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000; // the timeline's user units across the day
const SNAP = 0.015; // a click this close (share of the shown window) to a recording plays it
const HOUR_MS = 3600_000;
const CLIP_MS = 60_000; // the export's default length
const POLL_MS = 500;
const REFRESH_MS = 30_000;
const ZOOMS = [["сутки", 24 * HOUR_MS], ["3 часа", 3 * HOUR_MS], ["1 час", HOUR_MS], ["15 минут", HOUR_MS / 4]];
const MIN_PX = 3; // a recording, however short, is drawn at least this wide
const LAYERS = [
  ["recorded", "запись", 12, 16],
  ["motion", "движение", 2, 8],
  ["clips", "события", 30, 8],
  ["offline", "камера недоступна", 2, 36],
];

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

/** Offline periods from the camera's online/offline changes, clipped to the day. */
function outages(changes, from, to) {
  const out = [];
  let down = null;
  for (const change of changes) {
    const at = Date.parse(change.at);
    if (change.state === "offline" && down === null) down = at;
    if (change.state === "online" && down !== null) { out.push({ start: down, end: at }); down = null; }
  }
  if (down !== null) out.push({ start: down, end: Math.min(Date.now(), to) });
  return out.filter((s) => s.end > from);
}

/** The export card; `fill(day, from, to)` sets the day its times are on and pre-sets them. */
export function exportCard({ camera, zone }) {
  const from = el("input", { type: "time", step: "1", id: "export-from", required: true });
  const to = el("input", { type: "time", step: "1", id: "export-to", required: true });
  const progress = el("progress", { id: "export-progress", max: "1", value: "0", class: "hidden", "aria-label": "Готовность отрывка" });
  const link = el("a", { id: "export-link", class: "button primary hidden", download: "" }, "Скачать MP4");
  const button = el("button", { type: "submit", class: "primary" }, "Сохранить отрывок");
  let day = dayOf(new Date(), zone);
  const form = el("form", { id: "export", class: "export-form" },
    el("label", {}, "С", from), el("label", {}, "По", to), button);
  const card = el("section", { class: "card", "aria-labelledby": "export-title" },
    el("h2", { id: "export-title" }, "Сохранить отрывок"), form,
    el("div", { class: "row" }, progress, link));

  async function poll(job) {
    const state = await api(`/exports/${encodeURIComponent(job)}`);
    progress.value = state.progress;
    if (state.status === "done") {
      progress.value = 1;
      link.href = state.file;
      link.classList.remove("hidden");
      button.disabled = false;
      say("Отрывок готов", "ok");
    } else if (state.status === "running") {
      setTimeout(() => poll(job).catch(failed), POLL_MS);
    } else {
      failed({ message: "Не удалось сохранить отрывок" });
    }
  }

  function failed(error) {
    button.disabled = false;
    progress.classList.add("hidden");
    say(error.message, "error");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const start = instant(day, from.value, zone);
    let end = instant(day, to.value, zone);
    if (end <= start) end = instant(nextDay(day), to.value, zone); // past midnight
    button.disabled = true;
    link.classList.add("hidden");
    progress.value = 0;
    progress.classList.remove("hidden");
    say("Сохраняем отрывок…");
    try {
      const job = await api(`/cameras/${encodeURIComponent(camera.id)}/exports`,
        { method: "POST", body: { start: start.toISOString(), end: end.toISOString() } });
      await poll(job.id);
    } catch (error) {
      failed(error);
    }
  });

  return {
    card,
    /** The day the times are on, and optionally the range (instants) to pre-set. */
    fill(onDay, start, end) {
      day = onDay;
      from.value = start ? clock(start, zone) : "";
      to.value = end ? clock(end, zone) : "";
    },
  };
}

/** The archive card: day picker, timeline, player. */
export function archiveCard({ camera, zone }, exporter) {
  const base = `/cameras/${encodeURIComponent(camera.id)}`;
  const today = dayOf(new Date(), zone);
  const picker = el("input", { type: "date", id: "day", value: today, max: today });
  const at = el("input", { type: "time", step: "1", id: "at" });
  const play = el("button", { type: "button" }, "Смотреть");
  const bar = svg("svg", { id: "timeline", viewBox: `0 0 ${WIDTH} 40`, preserveAspectRatio: "none", role: "img" });
  const hours = el("div", { class: "hours", "aria-hidden": "true" });
  const zoom = el("select", { id: "zoom" }, ZOOMS.map(([label, ms]) => el("option", { value: String(ms) }, label)));
  const legend = el("ul", { class: "legend" },
    LAYERS.map(([kind, label]) => el("li", {}, el("span", { class: `key ${kind}` }), label)));
  const video = el("video", { id: "archive", controls: true, playsinline: true, class: "hidden", "aria-label": "Запись из архива" });
  const position = el("p", { id: "position", class: "muted", "aria-live": "off" });
  const card = el("section", { class: "card", "aria-labelledby": "archive-title" },
    el("h2", { id: "archive-title" }, "Архив"),
    el("div", { class: "row" }, el("label", {}, "День", picker), el("label", {}, "Масштаб", zoom)),
    el("div", { class: "timeline" }, bar, hours), legend,
    el("div", { class: "row play-at" }, el("label", {}, "Время", at), play),
    el("div", { class: "camera-frame" }, video), position);

  let day = today;
  let span = { from: 0, to: 0 }; // the day
  let view = span; // the part of it the timeline shows
  let timeline = null;
  let recorded = [];
  let loaded = null; // {start, end} in ms of what the <video> holds

  const x = (ms) => ((ms - view.from) / (view.to - view.from)) * WIDTH;

  /** The shown window: the day, or the chosen length around what plays (or the chosen time). */
  function frame() {
    const length = Math.min(Number(zoom.value), span.to - span.from);
    const around = loaded && loaded.now !== undefined ? loaded.now
      : at.value ? instant(day, at.value, zone).getTime() : span.from;
    const from = Math.min(Math.max(around - length / 2, span.from), span.to - length);
    view = { from, to: from + length };
    const tick = (ms) => (ms >= span.to ? "24:00" : clock(new Date(ms), zone).slice(0, 5));
    hours.replaceChildren(...[0, 1, 2, 3, 4].map((i) => el("span", {}, tick(view.from + (i * length) / 4))));
  }

  function draw() {
    if (!timeline) return;
    frame();
    const ms = (list) => list.map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }));
    const layers = {
      recorded,
      motion: ms(timeline.motion),
      clips: ms(timeline.clips),
      offline: outages(timeline.availability, span.from, span.to),
    };
    const least = (MIN_PX * WIDTH) / (bar.clientWidth || 300);
    bar.replaceChildren(svg("rect", { class: "track", x: 0, y: 12, width: WIDTH, height: 16 }));
    for (const [kind, , y, height] of LAYERS) {
      for (const s of layers[kind]) {
        if (s.end <= view.from || s.start >= view.to) continue;
        const left = x(Math.max(s.start, view.from));
        const width = Math.max(x(Math.min(s.end, view.to)) - left, kind === "recorded" ? least : 2);
        bar.append(svg("rect", { class: kind, x: left, y, width, height }));
      }
    }
    if (loaded) bar.append(svg("rect", { class: "cursor", x: x(loaded.now ?? loaded.start), y: 0, width: 2, height: 40 }));
    const minutes = Math.round(recorded.reduce((sum, s) => sum + s.end - s.start, 0) / 60_000);
    bar.setAttribute("aria-label", recorded.length
      ? `Шкала дня: ${recorded.length} отрезков записи, всего ${minutes} мин, событий: ${timeline.clips.length}`
      : "Шкала дня: записи нет");
  }

  async function load() {
    span = { from: instant(day, "00:00:00", zone).getTime(), to: instant(nextDay(day), "00:00:00", zone).getTime() };
    try {
      timeline = await api(`${base}/timeline?start=${new Date(span.from).toISOString()}&end=${new Date(span.to).toISOString()}`);
      recorded = timeline.recorded.map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }));
      if (recorded.length && !at.value) {
        const first = recorded[0];
        at.value = clock(new Date(Math.max(first.start, span.from)), zone);
        exporter.fill(day, new Date(first.start), new Date(Math.min(first.end, first.start + CLIP_MS)));
      }
      draw();
    } catch (error) {
      say(error.message, "error");
    }
  }

  /** Where a click at `ms` plays from: there, inside a recording; else the start of the
   *  nearest recording within SNAP of the window (a short one is drawn wider); or null. */
  function snap(ms) {
    if (recorded.some((s) => s.start <= ms && ms < s.end - 1000)) return ms;
    let best = null;
    let distance = SNAP * (view.to - view.from);
    for (const s of recorded) {
      const away = ms < s.start ? s.start - ms : ms - s.end;
      if (away <= distance) { best = s.start; distance = away; }
    }
    return best;
  }

  async function playFrom(ms) {
    const start = snap(ms);
    if (start === null) { say("В это время записи нет", "error"); return; }
    at.value = clock(new Date(start), zone);
    exporter.fill(day, new Date(start), new Date(start + CLIP_MS));
    if (loaded && start >= loaded.start && start < loaded.end && video.duration) {
      video.currentTime = (start - loaded.start) / 1000; // seek within what is loaded
      video.play().catch(() => {});
      return;
    }
    const end = Math.min(start + HOUR_MS, Date.now());
    try {
      const signed = await api(`${base}/playback?start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`);
      loaded = { start, end };
      video.src = signed.recording;
      video.classList.remove("hidden");
      say("");
      await video.play().catch(() => {});
    } catch (error) {
      say(error.message, "error");
    }
  }

  bar.addEventListener("click", (event) => {
    const box = bar.getBoundingClientRect();
    playFrom(view.from + ((event.clientX - box.left) / box.width) * (view.to - view.from));
  });
  play.addEventListener("click", () => at.value && playFrom(instant(day, at.value, zone).getTime()));
  zoom.addEventListener("change", draw);
  picker.addEventListener("change", () => {
    if (!picker.value) return;
    day = picker.value;
    at.value = "";
    exporter.fill(day);
    load();
  });
  video.addEventListener("timeupdate", () => {
    if (!loaded) return;
    const now = loaded.start + video.currentTime * 1000;
    loaded.now = now;
    position.textContent = `Воспроизводится: ${clock(new Date(now), zone)}`;
    const cursor = bar.querySelector(".cursor");
    if (cursor) cursor.setAttribute("x", x(now));
    else bar.append(svg("rect", { class: "cursor", x: x(now), y: 0, width: 2, height: 40 }));
  });
  video.addEventListener("error", () => say("Не удалось воспроизвести запись", "error"));
  load();
  setInterval(() => { if (!document.hidden && day === dayOf(new Date(), zone)) load(); }, REFRESH_MS);
  return card;
}
