/* /me: copy the freshly created API token; confirm destructive actions. Everything works without it. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var el = document.getElementById(button.dataset.copy);
        if (!el || !navigator.clipboard) return;
        navigator.clipboard.writeText(el.textContent.trim()).then(function () { button.textContent = "Copied"; });
      });
    });
    document.querySelectorAll("button.token-revoke, button.alert-delete").forEach(function (button) {
      button.addEventListener("click", function (ev) {
        if (!window.confirm(button.classList.contains("token-revoke")
          ? "Revoke this token? Requests using it will be refused."
          : "Delete this alert and its delivery log?")) ev.preventDefault();
      });
    });
  });
})();
