// Web Push on this device, for the settings page:
//
//   import { pushState, enablePush, disablePush } from "/app/push.js";
//   await pushState()   — "unsupported" | "denied" | "on" | "off"
//   await enablePush()  — call from a click: asks permission, subscribes with the gateway's
//                         VAPID key (GET /api/v1/push/key) and posts the subscription
//   await disablePush() — deletes this browser's subscription on the gateway and in the browser
//
// Errors are thrown as Error / ApiError with a Russian message.
import { api } from "/static/api.js";

const SCOPE = "/app/";

function supported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** The cabinet's worker registration, registering it if the shell has not yet. */
async function registration() {
  const found = await navigator.serviceWorker.getRegistration(SCOPE);
  if (!found) await navigator.serviceWorker.register("/app/sw.js", { scope: SCOPE });
  return navigator.serviceWorker.ready;
}

function bytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options && subscription.options.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  return a.length === key.length && a.every((b, i) => b === key[i]);
}

/** Whether this browser is subscribed and the gateway knows it. */
export async function pushState() {
  if (!supported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const found = await navigator.serviceWorker.getRegistration(SCOPE);
  const subscription = found && (await found.pushManager.getSubscription());
  if (!subscription || Notification.permission !== "granted") return "off";
  const mine = await api("/push/subscriptions");
  return mine.some((s) => s.endpoint === subscription.endpoint) ? "on" : "off";
}

/** Ask, subscribe, tell the gateway. Must run in a click handler (the permission prompt). */
export async function enablePush() {
  if (!supported()) throw new Error("Этот браузер не умеет push-уведомления");
  // First, while the click still counts as the user's gesture.
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("Уведомления не разрешены в браузере");
  const reg = await registration();
  const { application_server_key: encoded } = await api("/push/key");
  const key = bytes(encoded);
  let subscription = await reg.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  if (!subscription) {
    try {
      subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    } catch {
      throw new Error("Не удалось подписаться на уведомления в этом браузере");
    }
  }
  await api("/push/subscriptions", { method: "POST", body: subscription.toJSON() });
}

/** Forget this browser's subscription, on the gateway first. */
export async function disablePush() {
  if (!supported()) return;
  const found = await navigator.serviceWorker.getRegistration(SCOPE);
  const subscription = found && (await found.pushManager.getSubscription());
  if (!subscription) return;
  const mine = await api("/push/subscriptions");
  for (const row of mine.filter((s) => s.endpoint === subscription.endpoint)) {
    await api(`/push/subscriptions/${row.id}`, { method: "DELETE" });
  }
  await subscription.unsubscribe();
}
