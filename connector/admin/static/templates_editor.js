// Message template editor: the scope picker submits on change, and the preview follows the
// textarea while typing (debounced POST /api/v1/templates/preview); errors name their line.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }

  const textarea = document.getElementById("text");
  if (!textarea || textarea.readOnly || !window.cc) return;
  const preview = document.getElementById("preview");
  const errorBox = document.getElementById("template-error");
  let timer = null;
  let latest = 0;

  function showError(message) {
    const match = /^line (\d+): ([\s\S]*)$/.exec(message);
    errorBox.replaceChildren();
    const p = document.createElement("p");
    p.className = "field-error";
    const strong = document.createElement("strong");
    strong.textContent = match ? "Line " + match[1] + ": " : "";
    p.append(strong, match ? match[2] : message);
    errorBox.append(p);
    if (match) {
      const line = textarea.value.split("\n")[Number(match[1]) - 1];
      if (line !== undefined) {
        const pre = document.createElement("pre");
        pre.className = "error-line";
        const number = document.createElement("span");
        number.className = "line-no";
        number.textContent = match[1];
        pre.append(number, " " + line);
        errorBox.append(pre);
      }
    }
    errorBox.hidden = false;
    textarea.setAttribute("aria-invalid", "true");
    preview.classList.add("stale");
  }

  async function refresh() {
    const ticket = ++latest;
    const body = { type: textarea.dataset.type, locale: textarea.dataset.locale, text: textarea.value };
    if (textarea.dataset.integration) {
      body.integration = textarea.dataset.integration;
      body.entry_point = textarea.dataset.entryPoint;
    }
    try {
      const answer = await window.cc.fetchJSON(textarea.dataset.previewUrl, { method: "POST", body });
      if (ticket !== latest) return; // a newer keystroke is on its way
      preview.textContent = answer.off ? "(nothing: this message would not be sent)" : answer.text;
      preview.classList.remove("stale");
      errorBox.hidden = true;
      errorBox.replaceChildren();
      textarea.removeAttribute("aria-invalid");
    } catch (error) {
      if (ticket !== latest) return;
      const fields = (error.data && error.data.errors && error.data.errors.json) || {};
      showError((fields.text && fields.text[0]) || error.message);
    }
  }

  textarea.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
})();
