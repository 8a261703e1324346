// Rules page: selects that follow the chosen channel / integration, and drag-and-drop reordering
// saved through PUT /api/v1/rules/order (the up / down buttons work without this file).
(function () {
  "use strict";

  // <select data-filters="other-id">: only the <optgroup data-channel="value"> of the chosen value
  // stays selectable in the other select; data-event="id" also sets the rule event of the channel.
  function follow(select) {
    const target = document.getElementById(select.dataset.filters);
    if (!target) return;
    let firstAllowed = null;
    for (const group of target.querySelectorAll("optgroup")) {
      const allowed = group.dataset.channel === select.value;
      group.hidden = !allowed;
      for (const option of group.querySelectorAll("option")) {
        option.disabled = !allowed;
        if (allowed && !firstAllowed) firstAllowed = option;
      }
    }
    const current = target.selectedOptions[0];
    if ((!current || current.disabled) && firstAllowed) firstAllowed.selected = true;
    const event = select.dataset.event && document.getElementById(select.dataset.event);
    if (event) event.value = select.value === "sms" ? "mo" : "incoming_message";
  }
  for (const select of document.querySelectorAll("select[data-filters]")) {
    const current = select.value;
    select.addEventListener("change", () => follow(select));
    // On load keep a saved event as it is: only narrow the options.
    const eventId = select.dataset.event;
    delete select.dataset.event;
    follow(select);
    if (eventId) select.dataset.event = eventId;
    select.value = current;
  }

  // Drag and drop of rule rows; the default rule row is not draggable and stays last.
  const table = document.getElementById("rules");
  if (!table || !window.cc) return;
  const body = table.tBodies[0];
  const status = document.getElementById("order-status");
  let dragged = null;

  body.addEventListener("dragstart", (event) => {
    dragged = event.target.closest("tr.movable");
    if (!dragged) return;
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.rule);
  });
  body.addEventListener("dragover", (event) => {
    const over = event.target.closest("tr.movable");
    if (!dragged || !over || over === dragged) return;
    event.preventDefault();
    const box = over.getBoundingClientRect();
    const after = event.clientY > box.top + box.height / 2;
    body.insertBefore(dragged, after ? over.nextSibling : over);
  });
  body.addEventListener("dragend", () => dragged && dragged.classList.remove("dragging"));
  body.addEventListener("drop", async (event) => {
    if (!dragged) return;
    event.preventDefault();
    const name = dragged.dataset.rule;
    dragged.classList.remove("dragging");
    dragged = null;
    const order = Array.from(body.querySelectorAll("tr.movable")).map((row) => row.dataset.rule);
    status.textContent = "Saving the new order…";
    try {
      await window.cc.fetchJSON(table.dataset.orderUrl, { method: "PUT", body: { order } });
      window.location.hash = "rule-" + name;
      window.location.reload();
    } catch (error) {
      status.textContent = "The order was not saved: " + error.message + ". Reload the page and try again.";
    }
  });
})();
