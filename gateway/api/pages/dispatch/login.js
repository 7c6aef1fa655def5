// A dispatcher's login (the console keeps its own token, apart from the cabinet's); then on to
// the queue, or back to the case page the dispatcher was sent here from.
import { api, ApiError, nextPath, token } from "/static/api.js";
import { $, say } from "/static/ui.js";

const form = $("#login");
const button = $("button[type=submit]", form);
const MESSAGES = { 401: "Неверный логин или пароль" };

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const login = form.login.value.trim();
  const password = form.password.value;
  if (!login || !password) {
    say("Введите логин и пароль", "error");
    return;
  }
  button.disabled = true;
  say("Входим…");
  try {
    const answer = await api("/dispatch/login", { method: "POST", body: { login, password }, anonymous: true });
    token.set(answer.access_token);
    location.assign(nextPath("/dispatch/"));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    button.disabled = false;
    say(MESSAGES[error.status] || error.message, "error");
  }
});
