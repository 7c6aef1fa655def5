// The family page's confirmation: the page's <dialog id="confirm">, asked before anything that
// cannot be undone (removing a member, revoking a pass).
import { $ } from "/static/ui.js";

/** Ask `text`; resolves true when the user pressed the confirming button (`yes`). */
export function confirmed(text, yes) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-yes").textContent = yes;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}
