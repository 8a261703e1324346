// Integrations pages: indicator refresh without a reload, new readings from the page's live stream
// and their ticking age, the custom attribute rows, and the callback-auth fields that apply to the
// chosen type. Without JavaScript every control still works
// (refresh buttons are forms that post and come back; empty attribute rows are dropped).
(function () {
  "use strict";

  // -- indicators ---------------------------------------------------------------------------------
  // A row's reading comes from the page, a refresh's answer or the page's live stream (live.js): the
  // newest one (by when it was read) is shown, and its age ticks every second, like the server's
  // `indicators.age` words it ("checked 12 s ago").
  const latest = new Map(); // entry point → number of its newest request: an older answer never wins
  let clockOffset = 0; // server time − this browser's time, so a wrong clock here does not age readings

  function age(checkedAt) {
    const seconds = Math.max(0, Math.floor(Date.now() / 1000 + clockOffset - checkedAt));
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (seconds >= size) return `checked ${Math.floor(seconds / size)} ${unit} ago`;
    }
    return `checked ${seconds} s ago`;
  }

  function showAge(row) {
    if (!row.dataset.checkedAt) return;
    const checked = age(Number(row.dataset.checkedAt));
    row.querySelectorAll("[data-indicator]").forEach((light) => {
      const detail = light.dataset.detail || "";
      light.title = `${detail} · ${checked}`;
      const spoken = light.querySelector(".sr-only");
      if (spoken) spoken.textContent = `: ${detail}; ${checked}`;
    });
    const shown = row.querySelector(".checked");
    if (shown) shown.textContent = checked;
  }

  function paint(reading) {
    const row = document.querySelector(`tr[data-entry-point="${CSS.escape(reading.entry_point)}"]`);
    if (!row) return;
    const shownAt = row.dataset.checkedAt ? Number(row.dataset.checkedAt) : null;
    if (reading.checked_at === null || (shownAt !== null && reading.checked_at < shownAt)) return; // not newer
    row.dataset.checkedAt = String(reading.checked_at);
    for (const indicator of reading.indicators) {
      const light = row.querySelector(`[data-indicator="${indicator.name}"]`);
      if (!light) continue;
      light.className = `indicator ${indicator.state}`;
      light.dataset.state = indicator.state;
      light.dataset.detail = indicator.detail;
      light.textContent = indicator.label;
      const spoken = document.createElement("span");
      spoken.className = "sr-only";
      light.appendChild(spoken);
    }
    showAge(row);
  }

  async function refresh(url, names, button) {
    const status = document.getElementById("indicator-status");
    const tickets = names.map((name) => {
      const ticket = (latest.get(name) || 0) + 1;
      latest.set(name, ticket);
      return [name, ticket];
    });
    if (button) button.disabled = true;
    if (status) status.textContent = "Asking ECE…";
    try {
      const answer = await window.cc.fetchJSON(url, { method: "POST" });
      const readings = Array.isArray(answer) ? answer : [answer];
      for (const reading of readings) {
        const mine = tickets.find(([name]) => name === reading.entry_point);
        if (mine && latest.get(mine[0]) === mine[1]) paint(reading);
      }
      const failed = readings.filter((r) => r.error).map((r) => r.entry_point);
      if (status) status.textContent = failed.length ? `No reading for ${failed.join(", ")}: see the tooltips.` : "Indicators refreshed.";
    } catch (error) {
      if (status) status.textContent = `Refresh failed: ${error.message}`;
    } finally {
      if (button) button.disabled = false;
    }
  }

  function rowNames(form) {
    const row = form.closest("tr[data-entry-point]");
    if (row) return [row.dataset.entryPoint];
    return Array.from(document.querySelectorAll("tr[data-entry-point]"), (r) => r.dataset.entryPoint);
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset || !form.dataset.refreshApi) return;
    event.preventDefault();
    refresh(form.dataset.refreshApi, rowNames(form), form.querySelector("button"));
  });

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("entry-point-table");
    if (table) {
      if (table.dataset.serverNow) clockOffset = Number(table.dataset.serverNow) - Date.now() / 1000;
      table.addEventListener("cc:live", (event) => (event.detail.readings || []).forEach(paint));
      setInterval(() => table.querySelectorAll("tr[data-checked-at]").forEach(showAge), 1000);
    }
    if (table && table.dataset.autoRefresh) {
      const names = Array.from(table.querySelectorAll("tr[data-entry-point]"), (r) => r.dataset.entryPoint);
      refresh(table.dataset.autoRefresh, names, null);
    }

    // -- custom attribute rows --------------------------------------------------------------------
    const form = document.getElementById("attributes-form");
    if (form) {
      const body = form.querySelector("[data-rows]");
      const template = body.querySelector("tr[data-attribute-row]:last-child").cloneNode(true);
      const wire = (row) => {
        const remove = row.querySelector(".remove-row");
        remove.hidden = false;
        remove.addEventListener("click", () => {
          const next = row.nextElementSibling || row.previousElementSibling;
          row.remove();
          if (next) next.querySelector("input").focus();
        });
      };
      body.querySelectorAll("tr[data-attribute-row]").forEach(wire);
      const add = form.querySelector(".add-row");
      add.hidden = false;
      add.addEventListener("click", () => {
        const row = template.cloneNode(true);
        row.querySelectorAll("input").forEach((input) => { input.value = ""; input.removeAttribute("aria-invalid"); });
        row.querySelectorAll(".field-error").forEach((p) => p.remove());
        body.appendChild(row);
        wire(row);
        row.querySelector("input").focus();
      });
    }

    // -- callback auth: show the fields of the chosen type ----------------------------------------
    const auth = document.getElementById("callback_auth_type");
    if (auth) {
      const show = () => document.querySelectorAll("[data-auth]").forEach((el) => { el.hidden = el.dataset.auth !== auth.value; });
      auth.addEventListener("change", show);
      show();
    }
  });
})();
