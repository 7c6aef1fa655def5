// A WHEP client for the cabinet (camera live view and an intercom call's media): OPTIONS for
// the ICE servers (WHEP's `Link: <url>; rel="ice-server"` headers), POST the offer with all
// candidates gathered (the gateway takes no trickle), apply the answer, DELETE the session on
// close or when the page goes away. Paths are relative to /api/v1, as for api().
import { api, token } from "/static/api.js";

const GATHER_MS = 3000;

/** The STUN/TURN servers of a WHEP `Link` header. */
export function iceServers(link) {
  const servers = [];
  for (const part of (link || "").split(/,\s*(?=<)/)) {
    const url = /<([^>]+)>/.exec(part);
    if (!url || !/rel="ice-server"/.test(part)) continue;
    const user = /username="([^"]*)"/.exec(part);
    const secret = /credential="([^"]*)"/.exec(part);
    servers.push(user ? { urls: url[1], username: user[1], credential: secret ? secret[1] : "" } : { urls: url[1] });
  }
  return servers;
}

function gathered(pc) {
  return new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && done());
    setTimeout(done, GATHER_MS);
  });
}

/**
 * Watch `path` (e.g. `/cameras/<id>/whep`): video and audio received into one MediaStream.
 * With `talk: true` the audio is offered both ways with no track yet; `session.speak(track)`
 * puts the microphone on it later (no renegotiation), so nothing is asked or sent before then.
 * Throws ApiError (404 for what is not the caller's, 409 for a call that is over, 503…).
 * Returns {pc, stream, speak(track), close()}.
 */
export async function watch(path, { talk = false, onState = () => {} } = {}) {
  const options = await api(path, { method: "OPTIONS", raw: true });
  const pc = new RTCPeerConnection({ iceServers: iceServers(options.headers.get("Link")) });
  pc.addTransceiver("video", { direction: "recvonly" });
  const audio = pc.addTransceiver("audio", { direction: talk ? "sendrecv" : "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => stream.addTrack(event.track));
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  let location = null;
  const leave = () => {
    if (!location) return;
    const url = location;
    location = null;
    fetch(url, { method: "DELETE", keepalive: true, headers: { Authorization: `Bearer ${token.get()}` } })
      .catch(() => {});
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await api(path, { method: "POST", body: pc.localDescription.sdp, type: "application/sdp", raw: true });
    location = answer.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  } catch (error) {
    pc.close();
    leave();
    throw error;
  }
  addEventListener("pagehide", leave);
  return {
    pc,
    stream,
    speak: (track) => audio.sender.replaceTrack(track),
    close() {
      removeEventListener("pagehide", leave);
      pc.close();
      leave();
    },
  };
}
