// Live pages: the part of a page marked data-live="event types" is fetched again (at most
// every 300 ms) when one of those events arrives on the /live websocket. After a drop the page
// reconnects with backoff (0.5 s .. 8 s; a connection closed within 10 s, as after an overflow
// on a busy node, does not reset it), reloads what it shows and says "reconnected". Each
// connect (the first too) reloads once: events before the socket opened were not seen.
// Times are shown in the viewer's time zone (UTC stays in the title). Without JavaScript the
// pages work as they are, without the live part.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString(undefined, {dateStyle: "short", timeStyle: "medium"}); }
    });
  }
  localTimes(document);
  var region = document.querySelector("[data-live]");
  var status = document.getElementById("live-status");
  if (!region || !("WebSocket" in window)) { return; }
  function say(text, trouble) {
    if (!status) { return; }
    status.textContent = text;
    status.hidden = !text;
    status.className = trouble ? "alert" : "notice";  // a lost connection is not good news
  }
  var pending = null;
  function refresh() {
    if (pending) { return; }
    pending = setTimeout(function () {
      pending = null;
      fetch(location.href, {credentials: "same-origin", headers: {"X-Live-Refresh": "1"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
          if (!fresh) { return; }
          var checked = {};
          region.querySelectorAll("input[type=checkbox]:checked").forEach(function (c) { checked[c.value] = true; });
          fresh.querySelectorAll("input[type=checkbox]").forEach(function (c) { if (checked[c.value]) { c.checked = true; } });
          localTimes(fresh);
          region.replaceWith(fresh);
          region = fresh;
        })
        .catch(function () {});
    }, 300);
  }
  var delay = 500, dropped = false, openedAt = 0;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(scheme + "//" + location.host + "/live?types=" + encodeURIComponent(region.dataset.live));
    ws.onopen = function () {
      openedAt = Date.now();
      if (dropped) { say("Reconnected."); setTimeout(function () { say(""); }, 4000); }
      else { say(""); }
      // Events between rendering this page and opening the socket were not seen: catch up.
      refresh();
      document.documentElement.dataset.live = "connected";
    };
    ws.onmessage = function (message) {
      var frame = JSON.parse(message.data);
      if (frame.type !== "hello" && frame.type !== "overflow") { refresh(); }
    };
    ws.onclose = function () {
      dropped = true;
      document.documentElement.dataset.live = "reconnecting";
      say("Connection lost; reconnecting…", true);
      if (openedAt && Date.now() - openedAt >= 10000) { delay = 500; }
      openedAt = 0;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 8000);
    };
  }
  connect();
})();
