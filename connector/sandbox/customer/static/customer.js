// The sandbox customer page: send as a customer, poll the conversation. Plain DOM, no framework;
// every text goes in with textContent, never innerHTML.
(function () {
  "use strict";
  var body = document.body;
  var form = document.getElementById("send-form");
  var asset = document.getElementById("asset");
  var customer = document.getElementById("customer");
  var text = document.getElementById("text");
  var file = document.getElementById("file");
  var log = document.getElementById("log");
  var typing = document.getElementById("typing");
  var status = document.getElementById("status");
  var lastRendered = "";
  var POLL_MS = 1000;

  function say(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "";
  }

  function time(at) {
    return new Date(at * 1000).toLocaleTimeString();
  }

  function describe(entry) {
    if (entry.who === "customer") {
      var what = { text: "You", file: "You sent a file", postback: "You tapped", close: "You closed the conversation" };
      var label = what[entry.kind] || "You";
      if (entry.status && entry.status >= 300) { label += " (connector answered " + entry.status + ")"; }
      return label;
    }
    if (entry.who === "system") { return "System message"; }
    if (entry.kind === "close") { return "The conversation was closed"; }
    return "Agent";
  }

  function render(data) {
    var key = JSON.stringify(data);
    if (key === lastRendered) { return; }
    lastRendered = key;
    while (log.firstChild) { log.removeChild(log.firstChild); }
    if (!data.entries.length) {
      var empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "Nothing yet.";
      log.appendChild(empty);
    }
    data.entries.forEach(function (entry) {
      var item = document.createElement("li");
      item.className = entry.who;
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = describe(entry) + " · " + time(entry.at);
      item.appendChild(meta);
      if (entry.text) {
        var words = document.createElement("span");
        words.textContent = entry.text;
        item.appendChild(words);
      }
      entry.files.forEach(function (f) {
        var line = document.createElement("div");
        if (f.href) {
          var link = document.createElement("a");
          link.href = f.href;
          link.textContent = "📎 " + f.name;
          link.target = "_blank";
          link.rel = "noopener";
          line.appendChild(link);
        } else {
          line.textContent = "📎 " + f.name;
        }
        item.appendChild(line);
      });
      log.appendChild(item);
    });
    typing.textContent = data.typing ? "agent is typing…" : "";
  }

  function poll() {
    if (!customer.value.trim()) { return; }
    var url = body.dataset.conversationUrl + "?asset=" + encodeURIComponent(asset.value) +
      "&customer=" + encodeURIComponent(customer.value.trim());
    fetch(url).then(function (r) { return r.json(); }).then(function (data) {
      if (data.entries) { render(data); }
    }).catch(function () { /* the next poll tries again */ });
  }

  function send(action) {
    var data = new FormData(form);
    if (action) { data.append("action", action); }
    say("Sending…", false);
    fetch(body.dataset.sendUrl, { method: "POST", body: data })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer.ok) {
          say("Delivered to the connector (" + answer.status + ").", false);
          text.value = "";
          file.value = "";
        } else {
          say(answer.error || ("The connector answered " + answer.status + ": " + answer.answer), true);
        }
        poll();
      })
      .catch(function (err) { say("Could not send: " + err, true); });
  }

  asset.addEventListener("change", function () {
    var option = asset.options[asset.selectedIndex];
    customer.value = option.dataset.example || "";
    lastRendered = "";
    poll();
  });
  customer.addEventListener("change", function () { lastRendered = ""; poll(); });
  form.addEventListener("submit", function (event) { event.preventDefault(); send(null); });
  document.getElementById("close").addEventListener("click", function () { send("close"); });
  setInterval(poll, POLL_MS);
  poll();
})();
