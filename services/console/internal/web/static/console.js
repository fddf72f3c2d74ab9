// The console's little JavaScript: confirmations before destructive
// actions. Every page works without it.
"use strict";
document.addEventListener("submit", (e) => {
  const msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});
