// The operator's login: the admin bearer token, pasted once and kept in localStorage (the admin
// API knows tokens, not passwords). It is checked against the API before the page moves on.
import { api, ApiError, nextPath, token } from "/static/api.js";
import { $, say } from "/static/ui.js";

const form = $("#login");
const button = $("button[type=submit]", form);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = form.token.value.trim();
  if (!value) {
    say("Вставьте токен администратора", "error");
    return;
  }
  button.disabled = true;
  say("Проверяем токен…");
  token.set(value);
  try {
    await api("/admin/operator-alerts?limit=1");
    location.assign(nextPath("/operator/"));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    token.clear();
    button.disabled = false;
    say(error.status === 401 ? "Неверный токен администратора" : error.message, "error");
  }
});
