// pushring's pages work without this script except for Delete, which sends
// the Pushgateway's DELETE request for a group after a confirmation.
"use strict";
(function () {
  const dialog = document.getElementById("confirm-delete");
  if (!dialog) return;
  const groupText = document.getElementById("confirm-group");
  const errorText = document.getElementById("confirm-error");
  let pending = null;

  document.addEventListener("click", function (ev) {
    const b = ev.target.closest("button[data-delete]");
    if (!b) return;
    pending = b;
    groupText.textContent = b.dataset.group;
    errorText.hidden = true;
    dialog.showModal();
  });

  dialog.addEventListener("close", async function () {
    const b = pending;
    pending = null;
    if (!b || dialog.returnValue !== "delete") {
      if (b) b.focus();
      return;
    }
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
  });

  function fail(b, msg) {
    pending = b;
    errorText.textContent = msg;
    errorText.hidden = false;
    dialog.showModal();
  }
})();
