// Listening to the page's stream from a home-page section: a handler for "moydom:message" that
// the section can remove when the page re-draws for another home.

/** Call `handler(message)` for each stream message; returns the function that stops it. */
export function listen(handler) {
  const wrapped = (event) => handler(event.detail);
  window.addEventListener("moydom:message", wrapped);
  return () => window.removeEventListener("moydom:message", wrapped);
}

/** Run `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}
