// What both console pages share: Russian names of alarms, Contact ID codes, case states and
// timeline entries; which cases the dispatcher has seen (per browser, so a highlight lasts
// until someone here looked); the alert sound; logging out.
import { token } from "/static/api.js";

export const ALARMS = {
  burglary: "Проникновение",
  entry_exit: "Вход/выход без кода",
  leak: "Протечка воды",
  tamper: "Вскрытие датчика",
  panic: "Тревожная кнопка",
  duress: "Код под принуждением",
  supervision: "Датчик не на связи",
  wrong_code: "Подбор кода",
};

const CONTACT_ID = {
  120: "Тревожная кнопка (panic)",
  121: "Принуждение (duress)",
  130: "Кража/проникновение (burglary)",
  134: "Вход/выход (entry/exit)",
  137: "Вскрытие (tamper)",
  154: "Протечка воды (water leak)",
  381: "Потеря связи с датчиком (supervision)",
  401: "Снятие/постановка пользователем",
  461: "Неверный код (wrong code)",
};

export const contactName = (code) => CONTACT_ID[code] || "Событие Contact ID";

export const STATES = {
  open: "Не принята",
  acknowledged: "Принята",
  dispatched: "Группа направлена",
  closed: "Закрыта",
};

export const ENTRIES = {
  opened: "Тревога",
  clips: "Записи",
  central_station: "Пультовая станция",
  resent: "Повтор",
  acknowledged: "Принята",
  team_sent: "Группа",
  note: "Заметка",
  closed: "Закрыта",
  restored: "Норма",
  cancelled: "Отмена",
  status: "Режим охраны",
  refused: "Отказ постановки",
  force_armed: "Постановка с открытыми зонами",
  lockout: "Блокировка клавиатуры",
};

export const RESOLUTIONS = {
  false_alarm: "Ложная тревога",
  real: "Реальное происшествие",
  cancelled_by_subscriber: "Отменена абонентом",
  test: "Проверка",
};

/** A timeline line in Russian; the server's own text (after its `kind:` prefix) where it is
 * free text a person typed, or a detail there is no translation for. */
export function describe(entry, item) {
  const text = entry.text.replace(/^[a-z_]+: /, "");
  const number = (/\d+/.exec(entry.text) || [""])[0];
  switch (entry.kind) {
    case "opened":
      return `${ALARMS[item.alarm] || item.alarm}, зона «${item.zone_name || item.zone || "—"}», Contact ID ${item.contact_id}`;
    case "clips":
      return `сохранены записи камер: ${number}`;
    case "resent":
      return `не принята диспетчером, показана повторно (${number})`;
    case "acknowledged":
      return "тревога принята";
    case "team_sent":
      return `направлена группа ${text}`;
    case "closed": {
      const [resolution, ...note] = text.split(" — ");
      return [RESOLUTIONS[resolution] || resolution, ...note].join(" — ");
    }
    case "central_station":
      return /\(ACK\)/.test(entry.text) ? "станция приняла сообщение (ACK)" : entry.text;
    default:
      return text;
  }
}

const SEEN = "moydom-dispatch-seen";

function seenMap() {
  try {
    return JSON.parse(localStorage.getItem(SEEN) || "{}");
  } catch {
    return {};
  }
}

/** Whether the dispatcher looked at the case since it last changed for the worse (re-sent). */
export function isSeen(item) {
  const seen = seenMap()[item.id];
  return seen !== undefined && seen >= item.resends;
}

export function markSeen(item) {
  const all = seenMap();
  all[item.id] = item.resends;
  localStorage.setItem(SEEN, JSON.stringify(all));
}

/** The alert chime; browsers let a page sound only after a click, hence the button. */
export function alarmSound(button) {
  const audio = new Audio("/dispatch/alert.wav");
  let enabled = false;
  const play = () => {
    if (!enabled) return;
    audio.currentTime = 0;
    audio.play().then(() => {
      document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
    }).catch(() => {});
  };
  button.addEventListener("click", () => {
    enabled = !enabled;
    button.textContent = enabled ? "Звук включён" : "Включить звук";
    button.setAttribute("aria-pressed", String(enabled));
    play();
  });
  return play;
}

export function logoutButton(button) {
  button.addEventListener("click", () => {
    token.clear();
    location.assign("/dispatch/login");
  });
}
