// slotpool queue page: joins the queue, shows position, estimated wait and a countdown to
// the next automatic check, listens for changes over Server-Sent Events (checking on a
// timer as well, so it keeps working when the stream cannot be opened), and takes the
// user to the product the moment the slot is granted. A change of the product's mode
// (event: mode) shows or removes the administrator's maintenance message.
(function () {
  "use strict";
  var root = document.getElementById("slotpool-queue");
  if (!root) return;
  var d = root.dataset;
  var slotUrl = new URL(d.slot, location.href).toString();
  var eventsUrl = new URL(d.events, location.href).toString();
  var returnTo = d.returnTo;
  var el = function (id) { return document.getElementById(id); };
  var position = el("sp-position"), wait = el("sp-wait"), countdown = el("sp-countdown");
  var stateText = el("sp-state"), mode = el("sp-mode"), reconnect = el("sp-reconnect");
  var cont = el("sp-continue"), progress = el("sp-progress"), waitingFor = el("sp-waiting-for");
  var intro = el("sp-intro");
  var retryAfter = 5, left = 5, leaving = false, source = null, lastPosition = null;

  function fmtWait(s) {
    if (s < 60) return s + " " + d.tSeconds;
    return Math.ceil(s / 60) + " " + d.tMinutes;
  }
  function say(text, cls) {
    stateText.textContent = text;
    stateText.className = "state-text" + (cls ? " " + cls : "");
  }
  // Rule 10: why members behind may pass this user, or nothing; and an intro that does
  // not say all licences are in use when one may be free for others.
  function why(s) {
    var text = "";
    if (s.waiting_for === "group_cap") text = d.tWaitingGroupCap + " " + (s.group || "");
    else if (s.waiting_for === "reserved") text = d.tWaitingReserved;
    if (waitingFor.textContent !== text) waitingFor.textContent = text;
    waitingFor.hidden = text === "";
    var introText = text === "" ? d.tIntro : d.tIntroPassed;
    if (intro.textContent !== introText) intro.textContent = introText;
  }
  function go() {
    if (leaving) return;
    leaving = true;
    cont.classList.remove("hidden");
    if (source) source.close();
    location.replace(returnTo);
  }
  function show(s) {
    if (!s || !s.state) return;
    root.setAttribute("data-current", s.state);
    if (s.state === "granted") { say(d.tGranted, "ok"); go(); return; }
    if (s.state === "fixed") { say(d.tFixed, "ok"); go(); return; }
    if (s.state === "queued") {
      // Only a change of position is announced (the region is aria-live).
      if (s.position !== lastPosition) { position.textContent = String(s.position); lastPosition = s.position; }
      wait.textContent = fmtWait(s.estimated_wait_s || 0);
      why(s);
      if (s.retry_after_s) retryAfter = Math.max(1, s.retry_after_s);
      say("", "");
      progress.classList.remove("hidden");
      return;
    }
    position.textContent = "–"; wait.textContent = "–"; lastPosition = null;
    why(s);
    progress.classList.add("hidden");
    if (s.state === "locked") {
      var at = new Date(s.locked_until);
      say(d.tLocked + " " + at.toLocaleTimeString(document.documentElement.lang), "bad");
      return;
    }
    say(d.tNone, "");
  }
  // queue_all (maintenance): the administrator's message, shown the moment the mode
  // switches to it and removed the moment it switches back. The message is the page's
  // own (#sp-maintenance, rendered and sanitised by slotpool), fetched again; a later
  // switch wins over an answer still on its way. After the stream was lost a while, the
  // page asks again (a switch it did not hear).
  var modeTurn = 0;
  function maintenance(code) {
    var box = el("sp-maintenance");
    if (!box) return;
    if (code !== "queue_all") { ++modeTurn; box.hidden = true; box.textContent = ""; return; }
    refreshMaintenance();
  }
  function refreshMaintenance() {
    var box = el("sp-maintenance"), turn = ++modeTurn;
    if (!box) return;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (text) {
        if (text === null || turn !== modeTurn) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("sp-maintenance");
        box.textContent = "";
        if (fresh && !fresh.hidden) {
          while (fresh.firstChild) box.appendChild(document.adoptNode(fresh.firstChild));
        }
        box.hidden = !box.hasChildNodes();
      }, function () { /* the next switch tries again */ });
  }
  function problem(res) {
    return res.json().then(function (p) {
      say(d.tError + " " + (p.detail || p.title || res.status), "bad");
    }, function () { say(d.tError + " HTTP " + res.status, "bad"); });
  }
  function call(method) {
    return fetch(slotUrl, { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) {
        if (res.ok) return res.json().then(show);
        return problem(res);
      }, function (e) { say(d.tError + " " + e, "bad"); });
  }
  // The stream is opened again after it fails for good (a 503 while a cluster elects a
  // leader closes an EventSource): after 1, 2, 4 ... 30 s, with jitter, so that the
  // browsers of a whole queue do not come back at the same instant; polling covers the gap.
  var backoff = 1, heard = false;
  function listen() {
    if (!window.EventSource) { mode.textContent = d.tPolling; return; }
    source = new EventSource(eventsUrl, { withCredentials: true });
    source.onopen = function () {
      mode.textContent = d.tLive; backoff = 1;
      if (heard) refreshMaintenance();
      heard = true;
    };
    source.onerror = function () {
      mode.textContent = d.tPolling;
      if (source.readyState !== EventSource.CLOSED || leaving) return;
      source = null;
      setTimeout(function () { if (!leaving) listen(); }, backoff * (500 + Math.random() * 1000));
      backoff = Math.min(backoff * 2, 30);
    };
    ["granted", "queue", "warning", "revoked", "locked", "none"].forEach(function (name) {
      source.addEventListener(name, function (ev) {
        try { show(JSON.parse(ev.data)); } catch (e) { /* a malformed frame is ignored */ }
      });
    });
    // The product's mode changed (the new mode in `reason`, with this user's state).
    source.addEventListener("mode", function (ev) {
      var s;
      try { s = JSON.parse(ev.data); } catch (e) { return; }
      maintenance(s.reason);
      show(s);
    });
  }
  function tick() {
    if (leaving) return;
    left -= 1;
    if (left <= 0) {
      left = retryAfter;
      // The poll keeps the queue place alive and covers a stream that cannot be opened.
      call("GET");
    }
    countdown.textContent = left + " " + d.tSeconds;
  }
  reconnect.addEventListener("click", function () { left = retryAfter; call("POST"); });
  root.classList.add("js");
  say(d.tJoining, "");
  call("POST").then(function () { if (!leaving) listen(); });
  countdown.textContent = left + " " + d.tSeconds;
  setInterval(tick, 1000);
})();
