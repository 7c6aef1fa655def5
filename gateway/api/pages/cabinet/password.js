// Change the password (old and new, POST /me/password). Every other session of this login ends;
// the answer is a new token for this one, stored so the page stays logged in.
import { api, ApiError, token } from "/static/api.js";
import { $, say } from "/static/ui.js";
import { startPage } from "/app/shell.js";

const page = await startPage({ title: "Смена пароля", active: "settings" });
const form = $("#change");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const old = form.old.value;
  const password = form.password.value;
  if (!old) return say("Введите текущий пароль", "error");
  if (password.length < 8) return say("Новый пароль должен быть не короче 8 символов", "error");
  if (password !== form.again.value) return say("Пароли не совпадают", "error");
  try {
    await page.restream(async () => {
      const answer = await api("/me/password", { method: "POST", body: { old_password: old, new_password: password } });
      token.set(answer.access_token);
    });
    form.reset();
    say("Пароль изменён", "ok");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 403) say("Текущий пароль неверен", "error");
    else if (error.status === 422) say("Новый пароль должен быть не короче 8 символов", "error");
    else say(error.message, "error");
  }
});
