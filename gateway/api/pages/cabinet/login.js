// Login by contract number (or a member's phone or e-mail) and password; then back to `next`.
// A throttled login shows «повторите через N с» counting down, with the button held until then.
import { api, ApiError, nextPath, token } from "/static/api.js";
import { $, say } from "/static/ui.js";

const form = $("#login");
const button = $("button[type=submit]", form);

const MESSAGES = {
  401: "Неверный номер договора или пароль",
  403: "Договор приостановлен: вход невозможен. Обратитесь в поддержку",
};

/** Hold the button for `seconds`, saying how long is left. */
function countdown(seconds) {
  let left = seconds;
  button.disabled = true;
  const tick = () => {
    if (left <= 0) {
      clearInterval(timer);
      button.disabled = false;
      say("Можно попробовать снова");
      return;
    }
    say(`Слишком много попыток, повторите через ${left} с`, "error");
    left -= 1;
  };
  const timer = setInterval(tick, 1000);
  tick();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const contract = form.contract.value.trim();
  const password = form.password.value;
  if (!contract || !password) {
    say("Введите номер договора и пароль", "error");
    return;
  }
  button.disabled = true;
  say("Входим…");
  try {
    const answer = await api("/auth/login", { method: "POST", body: { contract, password }, anonymous: true });
    token.set(answer.access_token);
    location.assign(nextPath("/app/"));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    button.disabled = false;
    if (error.status === 429) countdown(error.retryAfter || 60);
    else say(MESSAGES[error.status] || error.message, "error");
  }
});
