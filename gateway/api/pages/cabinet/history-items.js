// How the history page words each kind of entry in Russian: device events (by their class and
// body), alerts, intercom calls, gate and door commands, and the audit trail's actions.
// Each `…Item` returns {title, facts, kind} for one entry; the page lays them out.

const EVENT = {
  availability: (b) => (b.state === "online" ? "Снова на связи" : "Нет связи с устройством"),
  telemetry: () => "Показания устройства",
  tamper: () => "Вскрытие корпуса",
  motion: (b) => (b.occupancy === false || b.motion === false ? "Движение прекратилось" : "Движение"),
  leak: (b) => (b.water_leak ? "Протечка воды!" : "Протечки нет"),
  contact: (b) => (b.contact ? "Закрыто" : "Открыто"),
  keypad_action: () => "Действие на клавиатуре",
  siren: (b) => (b.alarm ? "Сирена включена" : "Сирена"),
  heartbeat: () => "Устройство на связи",
  command_result: () => "Ответ на команду",
  gate_state: () => "Ворота: новое положение",
  intercom_call: () => "Вызов домофона",
  intercom_door: () => "Дверь домофона открыта",
  panel_arm: () => "Охранная панель: режим охраны",
  panel_zone: () => "Охранная панель: зона",
  panel_trouble: () => "Охранная панель: неисправность",
  command: (b) => `Открытие: ${COMMAND[b.status] || b.status}`,
  call: (b) => `Звонок домофона: ${CALL[b.state] || b.state}`,
};

/** Russian names of event classes, for the filter and the entries. */
export const EVENT_NAMES = {
  motion: "Движение", leak: "Протечка", contact: "Открытие/закрытие", tamper: "Вскрытие корпуса",
  availability: "Связь с устройством", keypad_action: "Клавиатура", siren: "Сирена",
  command: "Открытия ворот и дверей", call: "Звонки домофона", panel_arm: "Режим охраны",
  panel_zone: "Зоны охраны", panel_trouble: "Неисправности панели", gate_state: "Положение ворот",
  intercom_door: "Дверь домофона", telemetry: "Показания", heartbeat: "Проверка связи",
};

const COMMAND = {
  sent: "ждём ответа", acknowledged: "открыто", refused: "отказ", failed: "отказ", expired: "нет ответа",
};
const CALL = {
  ringing: "звонит", answered: "отвечен", ended: "завершён", missed: "пропущен", declined: "отклонён",
};
const CATEGORY = {
  alarm: "Тревога", leak: "Протечка", trouble: "Неисправность", security: "Охрана",
  intercom: "Домофон", gate: "Ворота",
};
const ACTOR = { owner: "владелец", member: "член семьи", guest: "гостевой пропуск", dispatcher: "диспетчер", admin: "оператор" };
const ACTION = {
  armed: "Поставлено под охрану", disarmed: "Снято с охраны", command_sent: "Команда устройству",
  call_answered: "Ответ на звонок", call_door_opened: "Дверь открыта во время звонка",
  export_started: "Выгрузка записи", live_view_started: "Просмотр камеры",
  call_media_started: "Видео звонка", notification_settings_changed: "Изменены уведомления",
  member_invited: "Приглашён член семьи", member_changed: "Изменены права члена семьи",
  member_removed: "Удалён член семьи", pass_created: "Создан гостевой пропуск",
  pass_revoked: "Гостевой пропуск отозван", gate_opened_by_pass: "Открыто по гостевому пропуску",
  password_changed: "Пароль изменён", password_reset: "Пароль восстановлен",
  password_reset_requested: "Запрошен код восстановления", password_reset_by_support: "Пароль сброшен поддержкой",
  contacts_changed: "Изменены контакты", alarm_user_added: "Добавлен код охраны",
  alarm_user_removed: "Удалён код охраны", camera_settings_changed: "Изменены настройки камеры",
  device_added: "Добавлено устройство", device_removed: "Удалено устройство",
  security_settings_changed: "Изменены настройки охраны", contract_suspended: "Договор приостановлен",
  contract_resumed: "Договор возобновлён", case_acknowledged: "Тревога принята диспетчером",
  case_team_sent: "Выслана группа", case_closed: "Тревога закрыта диспетчером",
};

export function eventItem(e, names) {
  const word = EVENT[e.event];
  const facts = [names(e.device)];
  const b = e.body || {};
  if (e.event === "command" && b.caller) facts.push(`кто: ${b.caller}`);
  if (e.event === "call" && b.answered_by) facts.push(`ответил: ${b.answered_by}`);
  if (e.event === "keypad_action" && b.action) facts.push(`действие: ${b.action}`);
  if (b.battery !== undefined) facts.push(`батарея ${b.battery} %`);
  return { title: word ? word(b) : e.event, facts, kind: "event" };
}

export function alertItem(a, names) {
  const facts = [CATEGORY[a.category] || a.category];
  if (a.device) facts.push(names(a.device));
  return { title: a.text || CATEGORY[a.category] || a.kind, facts, kind: "alert" };
}

export function callItem(c) {
  const facts = [c.panel_name, `квартира ${c.flat}`];
  if (c.answered_by) facts.push(`ответил: ${c.answered_by}`);
  return { title: `Звонок домофона: ${CALL[c.state] || c.state}`, facts, kind: "call" };
}

export function commandItem(c, names) {
  const facts = [names(c.device), `кто: ${c.caller}`];
  if (c.detail) facts.push(c.detail);
  return { title: `Открытие: ${COMMAND[c.status] || c.status}`, facts, kind: "command" };
}

export function auditItem(a, names) {
  const facts = [`${ACTOR[a.actor_kind] || a.actor_kind}: ${a.actor}`];
  if (a.device) facts.push(names(a.device));
  if (a.address) facts.push(`адрес ${a.address}`);
  return { title: ACTION[a.action] || a.action, facts, kind: "audit" };
}
