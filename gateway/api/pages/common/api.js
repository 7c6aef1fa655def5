// The one way every page talks to the gateway: the public REST API under /api/v1, with the
// bearer token kept in localStorage (so every open tab of one app shares a login). A page sets
// <html data-token-key="…"> to keep its own login (the dispatch console does).
const KEY = document.documentElement.dataset.tokenKey || "moydom-token";
const LOGIN = document.documentElement.dataset.login || "/app/login";

export const token = {
  get: () => localStorage.getItem(KEY),
  set: (value) => localStorage.setItem(KEY, value),
  clear: () => localStorage.removeItem(KEY),
};

const GENERIC = {
  400: "Неверный запрос",
  401: "Нужно войти заново",
  403: "Недостаточно прав",
  404: "Не найдено",
  409: "Действие сейчас невозможно",
  413: "Слишком большой запрос",
  422: "Проверьте введённые данные",
  429: "Слишком много попыток",
  503: "Сервис временно недоступен",
};

/** An API refusal: the HTTP status, the server's `detail`, and Retry-After in seconds. */
export class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(ApiError.russian(status, retryAfter));
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  static russian(status, retryAfter) {
    if (status === 429 && retryAfter) return `Слишком много попыток, повторите через ${retryAfter} с`;
    if (status === 0) return "Нет связи с сервером";
    return GENERIC[status] || (status >= 500 ? "Ошибка сервера, попробуйте позже" : "Ошибка запроса");
  }
}

/** Send to login, keeping where the user was; `next` is only ever a same-site path. */
export function toLogin() {
  token.clear();
  const next = location.pathname + location.search;
  if (location.pathname !== LOGIN) location.assign(`${LOGIN}?next=${encodeURIComponent(next)}`);
}

/** The page's way back after login: a same-site path only (no open redirect). */
export function nextPath(fallback) {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/(?!\/)[\w\-./?=&%]*$/.test(next) ? next : fallback;
}

/**
 * Call the API. `path` is relative to /api/v1. `body` is sent as JSON unless it is a string
 * (then `type` names it). Returns the parsed JSON (null for 204), or the Response with `raw`.
 * Throws ApiError; a 401 on an authenticated call sends the user to login.
 */
export async function api(path, { method = "GET", body, type, raw = false, anonymous = false } = {}) {
  const headers = {};
  const bearer = token.get();
  if (bearer && !anonymous) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined && typeof body !== "string") {
    body = JSON.stringify(body);
    type = "application/json";
  }
  if (type) headers["Content-Type"] = type;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body });
  } catch {
    throw new ApiError(0, "network");
  }
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    const retry = Number(response.headers.get("Retry-After")) || 0;
    if (response.status === 401 && bearer && !anonymous) toLogin();
    throw new ApiError(response.status, data.detail, retry);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** A login for pages that need one: the token, or off to the login page. */
export function requireLogin() {
  const bearer = token.get();
  if (!bearer) toLogin();
  return bearer;
}
