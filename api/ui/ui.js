// pushring's pages work without this script except for Delete, which sends
// the Pushgateway's DELETE request for a group after a confirmation.
"use strict";
(function () {
  const dialog = document.getElementById("confirm-delete");
  if (!dialog) return;
  const groupText = document.getElementById("confirm-group");
  const errorText = document.getElementById("confirm-error");
  const form = dialog.querySelector("form");
  let pending = null; // the Delete button whose dialog is open

  document.addEventListener("click", function (ev) {
    const b = ev.target.closest("button[data-delete]");
    if (!b) return;
    pending = b;
    groupText.textContent = b.dataset.group;
    errorText.hidden = true;
    dialog.showModal();
  });

  // The choice is taken when it is made, from the button that submitted
  // the form (Escape submits nothing), not in the dialog's close event:
  // that event is a task of its own, which a quick hand overtakes (the
  // dialog open again for another group before the first close has run,
  // whose handler then took the second group's button away). The browser
  // gives the focus back to the Delete that opened the dialog when it
  // closes.
  form.addEventListener("submit", function (ev) {
    const b = pending;
    pending = null;
    if (b && ev.submitter && ev.submitter.value === "delete") remove(b);
  });

  async function remove(b) {
    let resp;
    try {
      resp = await fetch(b.dataset.delete, { method: "DELETE", credentials: "same-origin" });
    } catch (e) {
      return fail(b, "The delete did not reach the gateway: " + e);
    }
    if (!resp.ok) {
      return fail(b, "The gateway refused the delete (" + resp.status + "): " + (await resp.text()));
    }
    if (b.dataset.after) {
      window.location.assign(b.dataset.after);
      return;
    }
    const row = b.closest("[data-key]");
    if (row) {
      row.remove();
    }
    const count = document.getElementById("count");
    if (count) count.textContent = "Group deleted. Reload for the current list.";
    if (count) count.setAttribute("role", "status");
  }

  // fail shows msg in the dialog for b, which offers the delete again.
  function fail(b, msg) {
    pending = b;
    groupText.textContent = b.dataset.group;
    errorText.textContent = msg;
    errorText.hidden = false;
    if (!dialog.open) dialog.showModal();
  }
})();
