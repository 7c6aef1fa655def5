// The cameras card: a grid of the latest recorded frame of each camera (GET
// /cameras/{id}/snapshot.jpg with the bearer token, shown from a blob: URL), each linking to its
// camera page. Frames are re-read every minute while the page is visible.
import { api } from "/static/api.js";
import { el } from "/static/ui.js";

const EVERY_MS = 60_000;

export function camerasCard({ devices }) {
  const cameras = devices.filter((d) => d.kind === "camera");
  if (!cameras.length) return {};
  const urls = new Map();
  const tiles = cameras.map((camera) => {
    const shot = el("div", { class: "shot none" }, "Загрузка…");
    const link = el("a", { href: `/app/camera?id=${encodeURIComponent(camera.id)}`, dataset: { device: camera.id } },
      shot, el("span", {}, camera.name));
    return { camera, link, shot };
  });
  const card = el("section", { class: "card", "aria-labelledby": "cameras-title" },
    el("h2", { id: "cameras-title" }, "Камеры"),
    el("div", { class: "cameras", id: "cameras" }, tiles.map((t) => t.link)));

  async function load(tile) {
    try {
      const response = await api(`/cameras/${encodeURIComponent(tile.camera.id)}/snapshot.jpg`, { raw: true });
      const url = URL.createObjectURL(await response.blob());
      URL.revokeObjectURL(urls.get(tile.camera.id));
      urls.set(tile.camera.id, url);
      const img = el("img", { class: "shot", src: url, alt: `Кадр камеры «${tile.camera.name}»` });
      tile.shot.replaceWith(img);
      tile.shot = img;
    } catch {
      const none = el("div", { class: "shot none" }, "Нет записи");
      tile.shot.replaceWith(none);
      tile.shot = none;
    }
  }

  const refresh = () => { if (!document.hidden) tiles.forEach(load); };
  refresh();
  const timer = setInterval(refresh, EVERY_MS);
  return { card, stop: () => { clearInterval(timer); urls.forEach((u) => URL.revokeObjectURL(u)); } };
}
