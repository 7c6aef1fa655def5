// Small helpers every page uses: building elements without innerHTML (nothing the API returns
// is ever parsed as markup), Russian dates in the home's time zone, and a status line.

/** el("button", {class: "primary", onclick: f}, "Открыть") — text children are text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** "5 дек., 14:03" in the given IANA zone (the home's; Novosibirsk when none is known). */
export function when(iso, zone = "Asia/Novosibirsk", withDate = true) {
  const options = { timeZone: zone, hour: "2-digit", minute: "2-digit" };
  if (withDate) Object.assign(options, { day: "numeric", month: "short" });
  return new Intl.DateTimeFormat("ru-RU", options).format(new Date(iso));
}

/** Show `text` in the page's live status region (role="status"), `kind` "error" or "ok". */
export function say(text, kind = "") {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = text;
  status.dataset.kind = kind;
}
