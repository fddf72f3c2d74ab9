// The console's little JavaScript: confirmations before destructive
// actions, and "#" field completion in workflow templates. Every page works
// without it (the fields are listed under the template too).
"use strict";

document.addEventListener("submit", (e) => {
  const msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});

// Template completion: typing "#" (or "#{" and part of a name) in the
// template opens a list of the module's fields; arrows move, Enter or Tab
// inserts the tag, Escape closes.
function setupCompletion() {
  const area = document.getElementById("template");
  const list = document.getElementById("template-completions");
  const data = document.getElementById("template-fields-data");
  const moduleSel = document.getElementById("module");
  if (!area || !list) return;
  let fields = [];
  try { fields = JSON.parse(data ? data.textContent : "[]") || []; } catch (_) { fields = []; }
  let shown = [], active = -1, start = -1;

  async function load(module) {
    try {
      const r = await fetch(area.dataset.fieldsUrl + "?module=" + encodeURIComponent(module), { credentials: "same-origin" });
      const body = await r.json();
      fields = body.fields || [];
    } catch (_) { fields = []; }
  }
  if (moduleSel) moduleSel.addEventListener("change", () => load(moduleSel.value));

  function close() { list.hidden = true; list.innerHTML = ""; shown = []; active = -1; area.removeAttribute("aria-activedescendant"); }

  function query() {
    const before = area.value.slice(0, area.selectionStart);
    const m = /#\{?([^#{}\n]*)$/.exec(before);
    if (!m) return null;
    start = before.length - m[0].length;
    return m[1].toLowerCase();
  }

  function render(q) {
    shown = fields.filter((f) => f.tag.toLowerCase().includes(q) || f.label.toLowerCase().includes(q) || f.api.toLowerCase().includes(q)).slice(0, 30);
    list.innerHTML = "";
    if (!shown.length) { close(); return; }
    shown.forEach((f, i) => {
      const li = document.createElement("li");
      li.id = "completion-" + i;
      li.setAttribute("role", "option");
      li.dataset.testid = "completion-" + f.api;
      li.textContent = f.tag + " — " + f.label;
      li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(i); });
      list.appendChild(li);
    });
    list.hidden = false;
    move(0);
  }

  function move(i) {
    if (!shown.length) return;
    active = (i + shown.length) % shown.length;
    list.querySelectorAll("li").forEach((li, j) => li.setAttribute("aria-selected", j === active ? "true" : "false"));
    area.setAttribute("aria-activedescendant", "completion-" + active);
    const li = document.getElementById("completion-" + active);
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  function pick(i) {
    const f = shown[i];
    if (!f) return;
    const end = area.selectionStart;
    area.value = area.value.slice(0, start) + f.tag + area.value.slice(end);
    const caret = start + f.tag.length;
    area.setSelectionRange(caret, caret);
    close();
    area.focus();
  }

  area.addEventListener("input", () => { const q = query(); if (q === null) close(); else render(q); });
  area.addEventListener("keydown", (e) => {
    if (list.hidden) return;
    if (e.key === "ArrowDown") { e.preventDefault(); move(active + 1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); move(active - 1); }
    else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); pick(active); }
    else if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  area.addEventListener("blur", () => setTimeout(close, 150));
}

document.addEventListener("DOMContentLoaded", setupCompletion);
