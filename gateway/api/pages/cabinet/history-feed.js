// One newest-first list out of several cursor-paged API lists (events, alerts, calls, commands,
// audit entries). Each source pages on its own cursor; an entry is shown only once no source
// that still has older pages could hold anything newer, so «Показать ещё» never reorders what
// is already on screen. Date limits the API cannot apply itself are applied here.

const ROUNDS = 8; // pages fetched per «Показать ещё» at most, when filters hide whole pages

/**
 * `sources`: [{name, fetch(cursor) → {items, next_cursor}, time(item) → ISO string,
 * keep(item) → boolean}]; `since`/`until`: Date or null (an entry at `until` or after is
 * skipped, one before `since` ends its source, as every list is newest first).
 */
export function feed(sources, { since = null, until = null } = {}) {
  const states = sources.map((source) => ({ source, buffer: [], cursor: null, done: false }));

  async function fill(state) {
    const { items, next_cursor: next } = await state.source.fetch(state.cursor);
    state.cursor = next;
    state.done = !next;
    for (const item of items) {
      const at = new Date(state.source.time(item));
      if (since && at < since) {
        state.done = true;
        break;
      }
      if (until && at >= until) continue;
      if (state.source.keep && !state.source.keep(item)) continue;
      state.buffer.push({ name: state.source.name, item, at });
    }
  }

  /** The next entries to show, newest first ([] when every source is exhausted). */
  async function more() {
    for (let round = 0; round < ROUNDS; round += 1) {
      await Promise.all(states.filter((s) => !s.done && !s.buffer.length).map(fill));
      const open = states.filter((s) => !s.done);
      if (open.some((s) => !s.buffer.length)) continue; // a page wholly filtered out
      const frontier = open.length ? Math.max(...open.map((s) => s.buffer.at(-1).at.getTime())) : -Infinity;
      const shown = [];
      for (const state of states) {
        const keep = [];
        for (const entry of state.buffer) (entry.at.getTime() >= frontier ? shown : keep).push(entry);
        state.buffer = keep;
      }
      if (shown.length || !open.length) return shown.sort((a, b) => b.at - a.at);
    }
    return [];
  }

  /** Whether «Показать ещё» can bring anything. */
  const exhausted = () => states.every((s) => s.done && !s.buffer.length);
  return { more, exhausted };
}

/** Midnight of `day` ("YYYY-MM-DD", plus `addDays`) in the IANA `zone`, as a Date. */
export function midnight(day, zone, addDays = 0) {
  const [y, m, d] = day.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d + addDays);
  let at = wall - offset(zone, new Date(wall));
  const again = offset(zone, new Date(at)); // across a change of the zone's offset
  if (again !== wall - at) at = wall - again;
  return new Date(at);
}

/** The zone's wall clock minus UTC at `at`, in ms. */
function offset(zone, at) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(at).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - Math.floor(at.getTime() / 1000) * 1000;
}
