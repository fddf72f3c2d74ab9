// The sandbox page's script: actions without reloading, and the message
// list refreshed whenever the stand-in records something (Server-Sent
// Events). Without it every form still works, by reloading the page.
(function () {
  "use strict";
  var messages = document.getElementById("messages");
  var status = document.getElementById("status");

  function show(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  var refreshing = false, again = false;
  function refresh() {
    if (!messages) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(messages.dataset.feed, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("feed: HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var atEnd = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 40;
      messages.innerHTML = html;
      if (atEnd) messages.scrollTop = messages.scrollHeight;
    }).catch(function (e) { show(e.message, true); }).finally(function () {
      refreshing = false;
      if (again) { again = false; refresh(); }
    });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-fetch")) return;
    ev.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    show("Sending…");
    fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), headers: { "X-Sandbox": "fetch" } })
      .then(function (r) { return r.json(); })
      .then(function (a) {
        show(a.message, !a.ok);
        if (a.ok && form.classList.contains("composer")) form.reset();
        refresh();
      })
      .catch(function (e) { show("Not sent: " + e.message, true); })
      .finally(function () { if (button) button.disabled = false; });
  });

  if (messages) {
    messages.scrollTop = messages.scrollHeight;
    var es = new EventSource("/events");
    es.addEventListener("change", refresh);
  }
})();
