// The admin overview's charts: votes per hour and per day of each arena, counted and
// excluded stacked (data from the page's #arena-activity, written by json_script).
(function () {
  "use strict";
  function colour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }
  function draw() {
    var node = document.getElementById("arena-activity");
    if (!node || typeof Chart === "undefined") return;
    var data = JSON.parse(node.textContent);
    var counted = colour("--secondary", "#417690");
    var excluded = colour("--error-fg", "#ba2121");
    var grid = colour("--hairline-color", "#e8e8e8");
    var text = colour("--body-quiet-color", "#666");
    document.querySelectorAll("canvas[data-activity]").forEach(function (canvas) {
      var arena = data[canvas.dataset.activity];
      var series = arena && arena[canvas.dataset.series];
      if (!series) return;
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: series.labels,
          datasets: [
            { label: "Counted", data: series.counted, backgroundColor: counted, stack: "votes" },
            { label: "Excluded", data: series.excluded, backgroundColor: excluded, stack: "votes" }
          ]
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: {
            x: { stacked: true, grid: { display: false },
                 ticks: { color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
            y: { stacked: true, beginAtZero: true, grid: { color: grid },
                 ticks: { color: text, precision: 0 } }
          }
        }
      });
      canvas.dataset.drawn = "true";
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
