// slotpool dashboard: the "Sync now" button (posts to the admin API with the session's
// CSRF token and shows the answer, or the problem), and logo upload (read into a hidden
// field as a data URL, so the settings form stays one urlencoded post).
(function () {
  "use strict";
  var sync = document.getElementById("sync-form");
  if (sync) {
    var out = document.getElementById("sync-result");
    sync.addEventListener("submit", function (ev) {
      ev.preventDefault();
      out.className = "small";
      out.textContent = "Syncing…";
      fetch(sync.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": sync.dataset.csrf, "Accept": "application/json" }
      }).then(function (res) {
        return res.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (e) { body = null; }
          if (res.ok) {
            out.className = "small flash ok";
            out.textContent = "Sync done" + (body && body.summary ? ": " + body.summary : ".");
          } else {
            out.className = "small flash bad";
            out.textContent = "Sync refused (" + res.status + "): " +
              (body && (body.detail || body.title) ? (body.title || "") + (body.detail ? " – " + body.detail : "") : text);
          }
        });
      }, function (e) {
        out.className = "small flash bad";
        out.textContent = "Sync failed: " + e;
      });
    });
  }
  var file = document.getElementById("logo_file");
  if (file) {
    file.addEventListener("change", function () {
      var f = file.files && file.files[0];
      var target = document.getElementById(file.dataset.target);
      if (!f || !target) return;
      if (f.size > 64 * 1024) { alert("The logo is larger than 64 KB."); file.value = ""; return; }
      var r = new FileReader();
      r.onload = function () { target.value = String(r.result); };
      r.readAsDataURL(f);
    });
  }
})();
// Live counts, holders and queue: the product page's [data-live] parts are fetched again
// every few seconds (the same server-rendered HTML), except a part the administrator is
// working in.
(function () {
  "use strict";
  var parts = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  if (!parts.length || !window.DOMParser) return;
  setInterval(function () {
    if (document.visibilityState !== "visible") return;
    fetch(location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        parts.forEach(function (part) {
          var next = fresh.getElementById(part.id);
          if (next && !part.contains(document.activeElement)) part.innerHTML = next.innerHTML;
        });
      }, function () { /* keep what is shown; the next round tries again */ });
  }, 5000);
})();
