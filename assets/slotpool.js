// slotpool snippet for product pages:
//   <script src="https://PROXY/slotpool/static/slotpool.js" data-product="jira" defer></script>
// Keeps the user's notification stream open, reports real use of the page as activity
// (throttled, only while the tab is visible), shows a warning popup before the slot is
// revoked ("Stay" counts as activity) and a "slot lost" notice with a reconnect link.
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !me.dataset.product) return;
  var product = me.dataset.product;
  var base = new URL("..", me.src).toString(); // the slotpool prefix, e.g. /slotpool/
  var api = base + "api/v1/products/" + encodeURIComponent(product);
  var throttleMs = 1000 * Number(me.dataset.activityThrottleS || 30);
  var de = /^de\b/i.test(me.dataset.lang || document.documentElement.lang || navigator.language || "");
  var T = de ? {
    warnTitle: "Ihre Lizenz läuft bald ab",
    warn: "Sie verlieren Ihre Lizenz um {t}, wenn Sie das Produkt bis dahin nicht nutzen.",
    stay: "Bleiben",
    lostTitle: "Lizenz verloren",
    lost: "Ihre Lizenz wurde entzogen ({r}). Verbinden Sie sich erneut, um weiterzuarbeiten.",
    reconnect: "Erneut verbinden"
  } : {
    warnTitle: "Your licence is about to expire",
    warn: "You will lose your slot at {t} unless you use the product before then.",
    stay: "Stay",
    lostTitle: "Slot lost",
    lost: "Your slot was taken back ({r}). Reconnect to continue working.",
    reconnect: "Reconnect"
  };
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = base + "static/widget.css";
  document.head.appendChild(css);

  var lastSent = 0, holding = false, dialog = null, lastFocus = null;

  function post(path) {
    return fetch(api + path, { method: "POST", credentials: "same-origin" });
  }
  function activity(force) {
    var now = Date.now();
    if (!holding || document.visibilityState !== "visible") return;
    if (!force && now - lastSent < throttleMs) return;
    lastSent = now;
    post("/activity").catch(function () {});
  }
  function close() {
    if (dialog) { dialog.remove(); dialog = null; }
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  function open(kind, title, text, action) {
    close();
    lastFocus = document.activeElement;
    var overlay = document.createElement("div");
    overlay.className = "slotpool-overlay";
    overlay.id = "slotpool-" + kind;
    var box = document.createElement("div");
    box.className = "slotpool-dialog" + (kind === "lost" ? " slotpool-lost" : "");
    box.setAttribute("role", kind === "lost" ? "alertdialog" : "alertdialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "slotpool-" + kind + "-title");
    box.setAttribute("aria-describedby", "slotpool-" + kind + "-text");
    var h = document.createElement("h2");
    h.id = "slotpool-" + kind + "-title";
    h.textContent = title;
    var p = document.createElement("p");
    p.id = "slotpool-" + kind + "-text";
    p.textContent = text;
    box.appendChild(h); box.appendChild(p); box.appendChild(action);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    dialog = overlay;
    action.focus();
  }
  function warn(s) {
    var at = new Date(s.revoke_at);
    var b = document.createElement("button");
    b.type = "button";
    b.id = "slotpool-stay";
    b.textContent = T.stay;
    b.addEventListener("click", function () {
      lastSent = Date.now();
      post("/activity").then(close, close);
    });
    open("warning", T.warnTitle, T.warn.replace("{t}", at.toLocaleTimeString(de ? "de" : "en", { hour12: false })), b);
  }
  function lost(s) {
    holding = false;
    var a = document.createElement("a");
    a.className = "slotpool-button";
    a.id = "slotpool-reconnect";
    a.textContent = T.reconnect;
    // A path on this host: valid for the queue page with or without a base_url.
    var here = location.pathname + location.search + location.hash;
    a.href = base + "queue/" + encodeURIComponent(product) + "?return_to=" + encodeURIComponent(here);
    open("lost", T.lostTitle, T.lost.replace("{r}", s.reason || "–"), a);
  }
  function handle(name, s) {
    if (s.state === "granted" || s.state === "fixed") holding = s.state === "granted";
    if (name === "warning" && s.state === "granted") warn(s);
    else if (name === "revoked") lost(s);
    else if (name === "granted" && dialog && dialog.id === "slotpool-warning") close();
  }
  // The stream is opened again after it fails for good (a 503 while a cluster elects a
  // leader closes an EventSource): after 1, 2, 4 ... 30 s, with jitter. Its first event is
  // the current state, so nothing said in between is missed.
  var backoff = 1;
  function listen() {
    var source = new EventSource(api + "/notifications", { withCredentials: true });
    source.onopen = function () { backoff = 1; };
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) return;
      setTimeout(listen, backoff * (500 + Math.random() * 1000));
      backoff = Math.min(backoff * 2, 30);
    };
    ["granted", "queue", "warning", "revoked", "locked", "none"].forEach(function (name) {
      source.addEventListener(name, function (ev) {
        try { handle(name, JSON.parse(ev.data)); } catch (e) { /* ignore a malformed frame */ }
      });
    });
    // The current state comes first on the stream; a warned holder sees the popup at once.
    source.addEventListener("granted", function (ev) {
      try { var s = JSON.parse(ev.data); if (s.warned) warn(s); } catch (e) { /* ignore */ }
    });
  }
  listen();
  ["click", "keydown", "scroll", "pointerdown", "touchstart"].forEach(function (type) {
    window.addEventListener(type, function (ev) {
      if (dialog && dialog.contains(ev.target)) return;
      activity(false);
    }, { passive: true, capture: true });
  });
  document.addEventListener("visibilitychange", function () { activity(false); });
  window.slotpool = { product: product, activity: function () { activity(true); } };
})();
