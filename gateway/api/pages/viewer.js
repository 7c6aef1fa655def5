"use strict";
// A minimal WHEP client: OPTIONS for the ICE servers, POST the offer (all candidates
// gathered, no trickle), apply the answer, DELETE the session when the page goes away.
const $ = (id) => document.getElementById(id);
const camera = location.pathname.split("/")[2] || "";
let token = new URLSearchParams(location.hash.slice(1)).get("token")
  || sessionStorage.getItem("moydom-token");
if (location.hash) history.replaceState(null, "", location.pathname);
if (token) sessionStorage.setItem("moydom-token", token);
const say = (text) => { $("status").textContent = text; document.body.dataset.state = text; };

async function call(method, path, body, type) {
  const headers = { Authorization: `Bearer ${token}` };
  if (type) headers["Content-Type"] = type;
  const r = await fetch(path, { method, headers, body });
  if (r.status === 401) {
    sessionStorage.removeItem("moydom-token");
    $("login").classList.remove("hidden");
  }
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || r.statusText);
  return r;
}

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

async function play() {
  const whep = `/api/v1/cameras/${camera}/whep`;
  const options = await call("OPTIONS", whep);
  const pc = new RTCPeerConnection({ iceServers: iceServers(options.headers.get("Link")) });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (event) => stream.addTrack(event.track);
  pc.onconnectionstatechange = () => say(`connection ${pc.connectionState}`);
  $("video").srcObject = stream;
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
    if (pc.iceGatheringState === "complete") done();
    setTimeout(done, 3000);
  });
  say("offer sent");
  const answer = await call("POST", whep, pc.localDescription.sdp, "application/sdp");
  const session = answer.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  addEventListener("pagehide", () => fetch(session, {
    method: "DELETE", keepalive: true, headers: { Authorization: `Bearer ${token}` },
  }));
  $("video").classList.remove("hidden");
}

async function list() {
  const r = await call("GET", "/api/v1/devices");
  for (const device of await r.json()) {
    if (device.kind !== "camera") continue;
    const link = document.createElement("a");
    link.href = `/live/${device.id}`;
    link.textContent = device.name;
    $("cameras").appendChild(document.createElement("li")).appendChild(link);
  }
}

function start() {
  $("login").classList.add("hidden");
  (camera ? play() : list()).catch((error) => say(error.message));
}

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const r = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ contract: form.get("contract"), password: form.get("password") }),
  });
  const body = await r.json();
  if (!r.ok) return say(body.detail);
  token = body.access_token;
  sessionStorage.setItem("moydom-token", token);
  start();
};
if (token) start(); else $("login").classList.remove("hidden");
