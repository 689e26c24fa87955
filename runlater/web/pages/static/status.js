// A public status page reads its JSON again every few seconds and shows what changed,
// without a reload (no credentials: the page is public, and cached briefly by the server).
(function () {
  "use strict";
  var root = document.getElementById("status-page");
  if (!root) return;
  var source = root.getAttribute("data-source");
  var pollMs = (parseInt(root.getAttribute("data-poll-s"), 10) || 10) * 1000;
  var words = { up: "Up", down: "Down", paused: "Paused", new: "Waiting" };

  function apply(page) {
    var overall = document.getElementById("overall");
    overall.textContent = page.overall;
    overall.className = "overall " + (page.down ? "overall-down" : "overall-up");
    var rows = document.querySelectorAll("#status-items .status-item");
    page.items.forEach(function (item, index) {
      var row = rows[index];
      if (!row) return;
      var state = row.querySelector("[data-role=state]");
      state.textContent = words[item.status] || item.status;
      state.className = "state state-" + item.status;
      var uptime = row.querySelector("[data-role=uptime]");
      if (uptime && item.uptime_90d !== null) uptime.textContent = item.uptime_90d.toFixed(2) + "% up";
      var bars = row.querySelectorAll(".bar");
      if (item.days && bars.length === item.days.length) {
        item.days.forEach(function (day, i) { bars[i].className = "bar bar-" + day.level; });
      }
    });
    var updated = document.getElementById("updated");
    updated.setAttribute("datetime", page.updated_at);
    updated.textContent = page.updated_at.slice(0, 19).replace("T", " ") + " UTC";
  }

  function poll() {
    fetch(source, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (page) { if (page) apply(page); })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { setTimeout(poll, pollMs); });
  }
  setTimeout(poll, pollMs);
})();
