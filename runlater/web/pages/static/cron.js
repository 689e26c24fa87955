// The cron helper of the task form: as you type, the next 5 runs in the chosen time zone and
// the expression in words (from /cron-preview, the scheduler's own evaluator).
(function () {
  "use strict";
  var cron = document.getElementById("f-cron");
  var zone = document.getElementById("f-timezone");
  var out = document.getElementById("cron-preview");
  if (!cron || !zone || !out) { return; }
  var timer = null;
  function show() {
    var expression = cron.value.trim();
    if (!expression) { out.textContent = ""; return; }
    var url = "/cron-preview?expression=" + encodeURIComponent(expression) +
      "&timezone=" + encodeURIComponent(zone.value.trim() || "UTC");
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
      out.innerHTML = "";
      if (data.error) { var p = document.createElement("p"); p.className = "error"; p.textContent = data.error; out.appendChild(p); return; }
      if (data.description) { var d = document.createElement("p"); d.textContent = data.description + " (" + data.timezone + ")"; out.appendChild(d); }
      var list = document.createElement("ol");
      data.next_runs.forEach(function (run) {
        var li = document.createElement("li");
        var t = document.createElement("time");
        t.setAttribute("datetime", run);
        var shown;
        try {
          shown = new Date(run).toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short", timeZone: data.timezone});
        } catch (e) {  // a zone this browser does not know: the UTC time
          shown = run;
        }
        t.textContent = shown;
        t.title = run;
        li.appendChild(t);
        list.appendChild(li);
      });
      out.appendChild(list);
    }).catch(function () {});
  }
  function soon() { clearTimeout(timer); timer = setTimeout(show, 250); }
  cron.addEventListener("input", soon);
  zone.addEventListener("input", soon);
  show();
})();
