// «Забыли пароль?»: ask for a code by login (POST /auth/password-reset: the same answer whether
// the login exists or not), then set a new password with it (…/confirm answers a token: the
// user is logged in at once).
import { api, ApiError, nextPath, token } from "/static/api.js";
import { $, say } from "/static/ui.js";

const request = $("#request");
const confirm = $("#confirm");
let login = "";

function failed(error) {
  if (!(error instanceof ApiError)) throw error;
  if (error.status === 401) say("Неверный или устаревший код", "error");
  else if (error.status === 422) say("Проверьте введённые данные: код из 6 цифр, пароль не короче 8 символов", "error");
  else say(error.message, "error");
}

async function ask() {
  try {
    await api("/auth/password-reset", { method: "POST", body: { login }, anonymous: true });
    request.classList.add("hidden");
    confirm.classList.remove("hidden");
    say("Если такой логин есть, код отправлен на его телефон или e-mail", "ok");
    confirm.code.focus();
  } catch (error) {
    failed(error);
  }
}

request.addEventListener("submit", (event) => {
  event.preventDefault();
  login = request.login.value.trim();
  if (!login) {
    say("Введите номер договора, телефон или e-mail", "error");
    return;
  }
  ask();
});

$("#resend").addEventListener("click", ask);

confirm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = confirm.code.value.trim();
  const password = confirm.password.value;
  if (!/^[0-9]{6}$/.test(code)) return say("Код — 6 цифр", "error");
  if (password.length < 8) return say("Пароль должен быть не короче 8 символов", "error");
  if (password !== confirm.again.value) return say("Пароли не совпадают", "error");
  try {
    const answer = await api("/auth/password-reset/confirm",
      { method: "POST", body: { login, code, new_password: password }, anonymous: true });
    token.set(answer.access_token);
    location.assign(nextPath("/app/"));
  } catch (error) {
    failed(error);
  }
});
