// The resumable WebSocket of the public API (/api/v1/stream, /api/v1/dispatch/stream): it
// authenticates by subprotocol (a browser cannot set headers), remembers the cursor of every
// message, and on reconnect asks for what it missed (`?after=<cursor>`), so a page that lost
// its connection for a minute shows the same history as one that did not.
import { token, toLogin } from "/static/api.js";

const UNAUTHORIZED = 4401;
const BEHIND = 4408;
const BAD_CURSOR = 4400;

/**
 * Open `path` (e.g. "/api/v1/stream") and call `onMessage(message)` for each message.
 * `onState(state)` hears "online" / "offline"; `{type: "resync"}` is passed to onMessage when
 * the server dropped the page for falling behind (re-fetch the lists, the stream goes on).
 * Returns a function that closes it for good.
 */
export function openStream(path, onMessage, onState = () => {}) {
  let cursor = null;
  let socket = null;
  let delay = 1000;
  let closed = false;

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = encodeURIComponent(cursor || "now");
    socket = new WebSocket(`${scheme}://${location.host}${path}?after=${after}`,
      ["moydom", `bearer.${token.get()}`]);
    socket.onopen = () => { delay = 1000; onState("online"); };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.cursor) cursor = message.cursor;
      onMessage(message);
    };
    socket.onclose = (event) => {
      onState("offline");
      if (closed) return;
      if (event.code === UNAUTHORIZED) { toLogin(); return; }
      if (event.code === BEHIND || event.code === BAD_CURSOR) {
        cursor = null;
        onMessage({ type: "resync" });
      }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  };
  connect();
  return () => { closed = true; socket.close(); };
}
