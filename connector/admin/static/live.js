// Live operator pages. Without this script every page works as before (a reload shows the same).
//
// <el data-live-stream="URL">   opens one EventSource on URL (the server's /admin/live/... stream; the
//                               browser resumes with Last-Event-ID). Each event is dispatched on `el`
//                               as a "cc:live" CustomEvent (detail: the event's data), and, if `el`
//                               also has data-live-reload, the page re-reads itself (below).
// <el data-live-every="10">     the page re-reads itself every 10 s (the overview's figures).
// <el id="x" data-live-region>  what a re-read replaces: the element of the same id in a fresh copy
//                               of this URL (the same filters and page), or removes when the fresh
//                               copy has none (a "nothing yet" note). Checked boxes and open
//                               <details> stay as they were; a region waits while a keyboard user's
//                               focus is in it or the pointer is on one of its controls (a row never
//                               moves under a click), until they leave. Then "cc:regions" is dispatched on
//                               document.
(function () {
  "use strict";

  const MIN_GAP_MS = 1000; // re-reads at most once a second, however many events arrive
  let timer = null;
  let inFlight = false;
  let again = false;
  let lastRead = 0;

  // A keyboard user's focus (not a mouse click's), or the pointer on a control: wait for them.
  function busy(region) {
    if (region.querySelector(":focus-visible")) return true;
    return region.querySelector("button:hover, a:hover, input:hover, select:hover, label:hover, textarea:hover") !== null;
  }

  function keepState(oldRegion, newRegion) {
    oldRegion.querySelectorAll("input[type=checkbox]:checked").forEach((box) => {
      const same = Array.from(newRegion.querySelectorAll("input[type=checkbox]")).find(
        (other) => other.name === box.name && other.value === box.value
      );
      if (same) same.checked = true;
    });
    oldRegion.querySelectorAll("details[id]").forEach((details) => {
      const same = newRegion.querySelector(`details#${CSS.escape(details.id)}`);
      if (same) same.open = details.open;
    });
  }

  function reread() {
    if (inFlight) { again = true; return; }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, lastRead + MIN_GAP_MS - Date.now()));
  }

  async function run() {
    timer = null;
    inFlight = true;
    again = false;
    lastRead = Date.now();
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (!response.ok || response.redirected) return; // gone, or logged out: the page stays as it is
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-live-region][id]").forEach((region) => {
        const next = fresh.getElementById(region.id);
        if (!next) { if (!busy(region)) region.remove(); return; } // the page no longer shows it (an "empty" note)
        if (busy(region)) {
          // Once the pointer leaves the control, or the focus leaves the region, read again.
          region.addEventListener("mouseout", reread, { once: true });
          region.addEventListener("focusout", reread, { once: true });
          return;
        }
        keepState(region, next);
        region.replaceWith(document.adoptNode(next));
      });
      document.dispatchEvent(new CustomEvent("cc:regions"));
    } catch (error) {
      again = true; // the network blinked: try again shortly
    } finally {
      inFlight = false;
      if (again) reread();
    }
  }

  function listen(element) {
    const source = new EventSource(element.dataset.liveStream);
    source.addEventListener("message", (message) => {
      let data = {};
      try { data = JSON.parse(message.data); } catch (error) { return; }
      element.dispatchEvent(new CustomEvent("cc:live", { detail: data, bubbles: true }));
      if (element.hasAttribute("data-live-reload")) reread();
    });
    window.addEventListener("pagehide", () => source.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    // Streams open once, from the page as it loaded: a region re-read later carries the same attribute.
    document.querySelectorAll("[data-live-stream]").forEach(listen);
    const every = document.querySelector("[data-live-every]");
    if (every) {
      const seconds = Math.max(2, Number(every.dataset.liveEvery) || 10);
      setInterval(() => { if (!document.hidden) reread(); }, seconds * 1000);
    }
  });
})();
