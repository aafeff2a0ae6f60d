// The reviewer's plot: a voter's choices against the crowd (admin voter page).
(function () {
  "use strict";
  function draw() {
    var node = document.getElementById("choice-series");
    var canvas = document.getElementById("choice-chart");
    if (!node || !canvas || typeof Chart === "undefined") return;
    var series = JSON.parse(node.textContent);
    var points = series.map(function (s, i) { return { x: i + 1, y: s.p_chosen }; });
    var chance = series.map(function (s, i) { return { x: i + 1, y: s.p_chance }; });
    // log_e is already a log10 (ranking.fraud.choice_series).
    var evidence = series.map(function (s, i) { return { x: i + 1, y: s.log_e }; });
    new Chart(canvas, {
      data: {
        datasets: [
          { type: "scatter", label: "Crowd's probability of this voter's choice", data: points,
            yAxisID: "p", backgroundColor: "rgba(37, 99, 235, 0.7)" },
          { type: "line", label: "Chance", data: chance, yAxisID: "p", borderDash: [6, 4],
            pointRadius: 0, borderColor: "#888", borderWidth: 1 },
          { type: "line", label: "Running evidence (log10 e-value)", data: evidence,
            yAxisID: "e", pointRadius: 0, borderColor: "#dc2626", borderWidth: 2 }
        ]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { type: "linear", title: { display: true, text: "Decided vote (oldest first)" } },
          p: { position: "left", min: 0, max: 1, title: { display: true, text: "probability" } },
          e: { position: "right", grid: { drawOnChartArea: false },
               title: { display: true, text: "log10 e-value" } }
        }
      }
    });
    canvas.dataset.points = String(points.length);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
