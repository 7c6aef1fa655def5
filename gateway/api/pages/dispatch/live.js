// Watching a camera of a case's home live: WHEP as in /live (OPTIONS for the ICE servers, POST
// the offer with every candidate gathered, apply the answer), through the dispatch routes, which
// end the session by themselves when the case closes. Returns a function that leaves.
import { api } from "/static/api.js";

function iceServers(link) {  // Link: <turn:…>; rel="ice-server"; username="…"; credential="…"
  const servers = [];
  for (const part of (link || "").split(/,\s*(?=<)/)) {
    const url = /<([^>]+)>/.exec(part);
    if (!url || !/rel="ice-server"/.test(part)) continue;
    const user = /username="([^"]*)"/.exec(part), secret = /credential="([^"]*)"/.exec(part);
    servers.push(user ? { urls: url[1], username: user[1], credential: secret ? secret[1] : "" }
                      : { urls: url[1] });
  }
  return servers;
}

export async function watch(caseId, camera, video, onState) {
  const whep = `/dispatch/cases/${caseId}/cameras/${camera}/whep`;
  const options = await api(whep, { method: "OPTIONS", raw: true });
  const pc = new RTCPeerConnection({ iceServers: iceServers(options.headers.get("Link")) });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (event) => stream.addTrack(event.track);
  pc.onconnectionstatechange = () => onState(pc.connectionState);
  video.srcObject = stream;
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
    if (pc.iceGatheringState === "complete") done();
    setTimeout(done, 3000);
  });
  let answer;
  try {
    answer = await api(whep, { method: "POST", body: pc.localDescription.sdp, type: "application/sdp", raw: true });
  } catch (error) {
    pc.close();
    throw error;
  }
  const session = answer.headers.get("Location").replace(/^\/api\/v1/, "");
  await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    pc.close();
    video.srcObject = null;
    api(session, { method: "DELETE" }).catch(() => {});  // gone already if the case closed
  };
  addEventListener("pagehide", leave);
  return leave;
}
