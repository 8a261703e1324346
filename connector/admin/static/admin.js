// Shared behaviour of the operator UI: confirmations and JSON calls carrying the CSRF token.
(function () {
  "use strict";
  const token = () => document.querySelector('meta[name="csrf-token"]').content;

  // window.cc.fetchJSON(url, {method, body}) → parsed JSON; throws Error(message) on a non-2xx answer.
  async function fetchJSON(url, options = {}) {
    const headers = { "Accept": "application/json", "X-CSRFToken": token() };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method: options.method || "GET",
      headers,
      credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(data.message || response.statusText), { data, status: response.status });
    return data;
  }

  // <form data-confirm="Delete this?"> asks before submitting.
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  window.cc = { fetchJSON, csrfToken: token };
})();
