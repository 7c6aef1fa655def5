// Wall-clock days and times in the home's zone, for the archive's day picker, timeline and
// time inputs: the browser's own zone may differ from the home's (a subscriber away from home
// sees the footage in the home's time, as the history does).
const PARTS = new Map();

function parts(date, zone) {
  if (!PARTS.has(zone)) {
    PARTS.set(zone, new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }));
  }
  return Object.fromEntries(PARTS.get(zone).formatToParts(date).map((p) => [p.type, p.value]));
}

function offsetMs(ms, zone) {
  const p = parts(new Date(ms), zone);
  return Date.UTC(+p.year, p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

/** The instant of wall time `time` ("HH:MM[:SS]") on `day` ("YYYY-MM-DD") in `zone`. */
export function instant(day, time, zone) {
  const [y, m, d] = day.split("-").map(Number);
  const [hh, mm, ss = 0] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm, ss);
  const first = wall - offsetMs(wall, zone);
  return new Date(wall - offsetMs(first, zone));
}

/** "YYYY-MM-DD" of `date` in `zone` (the value of an <input type="date">). */
export function dayOf(date, zone) {
  const p = parts(date, zone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** "HH:MM:SS" of `date` in `zone` (the value of an <input type="time" step="1">). */
export function clock(date, zone) {
  const p = parts(date, zone);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** The day after `day`, both "YYYY-MM-DD". */
export function nextDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}
