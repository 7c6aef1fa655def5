// The cabinet's service worker (scope /app/): keeps the shell for offline use and shows
// Web Push notifications when no cabinet is open.
//
// Pages and assets of /app/ and /static/ go network-first: a fresh copy is stored as it
// passes, the stored one answers when the network does not, and a page neither can give is
// /app/offline («Нет связи»). /api/ is never touched: data is never served stale.
// A push (gateway/security/alerts.py) is JSON {kind, title, body, url, topic, …ids}; the
// topic is the notification's tag, so a newer push of one call replaces its ringing one.

const CACHE = "moydom-shell-1";
const OFFLINE = "/app/offline";
// The shell, fetched at install. A name missing on this gateway is skipped, not fatal.
const SHELL = [
  "/app/cabinet.css",
  "/app/call-dialog.css",
  "/app/camera-archive.js",
  "/app/camera-time.js",
  "/app/camera.css",
  "/app/camera",
  "/app/camera.js",
  "/app/family-dialog.js",
  "/app/family-passes.js",
  "/app/family",
  "/app/family.js",
  "/app/forgot",
  "/app/forgot.js",
  "/app/guest",
  "/app/guest.js",
  "/app/history-feed.js",
  "/app/history-items.js",
  "/app/history-style.css",
  "/app/history",
  "/app/history.js",
  "/app/home-cameras.js",
  "/app/home-gates.js",
  "/app/home-live.js",
  "/app/home-security.js",
  "/app/home-sensors.js",
  "/app/icon-192.png",
  "/app/icon-512.png",
  "/app/icon.svg",
  "/app/",
  "/app/index.js",
  "/app/login",
  "/app/login.js",
  "/app/manifest.webmanifest",
  "/app/offline",
  "/app/password",
  "/app/password.js",
  "/app/push.js",
  "/app/ring.js",
  "/app/ring.wav",
  "/app/settings",
  "/app/settings.js",
  "/app/shell.js",
  "/app/whep.js",
  "/static/api.js",
  "/static/base.css",
  "/static/stream.js",
  "/static/ui.js",
];
const CALL_VIBRATION = [400, 200, 400, 200, 400, 200, 400];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.allSettled(SHELL.map(async (path) => {
      const response = await fetch(path, { cache: "no-cache" });
      if (response.ok) await cache.put(path, response);
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

/** Whether the worker answers this request: same-origin GETs of the shell, never the API. */
function kept(request) {
  if (request.method !== "GET") return false;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return false;
  if (url.pathname.startsWith("/api/") || url.pathname === "/app/sw.js") return false;
  return url.pathname.startsWith("/app/") || url.pathname.startsWith("/static/");
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") {
      await cache.put(request.url.split("#")[0], response.clone());
    }
    return response;
  } catch (error) {
    const stored = await cache.match(request, { ignoreSearch: request.mode === "navigate" });
    if (stored) return stored;
    if (request.mode === "navigate") {
      const offline = await cache.match(OFFLINE);
      if (offline) return offline;
    }
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  if (kept(event.request)) event.respondWith(networkFirst(event.request));
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const call = data.kind === "call";
  const over = data.kind === "call_end"; // replaces its call's ringing notification, quietly
  const options = {
    body: data.body || "",
    tag: data.topic || data.kind || "moydom",
    renotify: !over,
    silent: over,
    requireInteraction: call || data.kind === "alarm",
    icon: "/app/icon-192.png",
    badge: "/app/icon-192.png",
    lang: "ru",
    data: { url: data.url || "/app/", kind: data.kind, call: data.call, alert: data.alert },
  };
  if (call) options.vibrate = CALL_VIBRATION;
  event.waitUntil(self.registration.showNotification(data.title || "Мой дом", options));
});

/** The notification's page: a same-origin path under /app/, else the home page. */
function target(notification) {
  const url = new URL((notification.data && notification.data.url) || "/app/", self.location.origin);
  return url.origin === self.location.origin && url.pathname.startsWith("/app/")
    ? url.href
    : new URL("/app/", self.location.origin).href;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = target(event.notification);
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const cabinet = open.find((client) => new URL(client.url).pathname.startsWith("/app/"));
    if (cabinet) {
      const focused = await cabinet.focus();
      if (focused.url !== url && "navigate" in focused) await focused.navigate(url).catch(() => {});
      return;
    }
    await self.clients.openWindow(url);
  })());
});
