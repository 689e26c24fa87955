// The home page's charts, drawn with the vendored uPlot from the numbers the page carries
// (#chart-data); redrawn when the live part of the page is reloaded.
(function () {
  "use strict";
  var drawn = [];
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.uPlot) { return; }
    var data = JSON.parse(source.textContent);
    drawn.forEach(function (chart) { chart.destroy(); });
    drawn = [];
    var runs = document.getElementById("chart-runs");
    var durations = document.getElementById("chart-durations");
    var width = Math.max(300, runs.clientWidth - 20);
    var axis = {stroke: css("--muted"), grid: {stroke: css("--line")}};
    drawn.push(new uPlot({
      width: width, height: 180, axes: [axis, axis],
      series: [{}, {label: "success", stroke: css("--accent"), fill: css("--accent") + "33"},
               {label: "failed", stroke: css("--danger")}]
    }, [data.t, data.success, data.failed], runs));
    drawn.push(new uPlot({
      width: width, height: 180, axes: [axis, axis],
      series: [{}, {label: "p50 ms", stroke: css("--accent")}, {label: "p95 ms", stroke: css("--focus")}]
    }, [data.t, data.p50, data.p95], durations));
  }
  document.addEventListener("DOMContentLoaded", draw);
  new MutationObserver(function () {
    if (!document.getElementById("chart-runs").firstChild) { draw(); }
  }).observe(document.getElementById("content"), {childList: true, subtree: true});
})();
