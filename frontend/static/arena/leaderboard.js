/* leaderboard.js: draws the leaderboard page's two charts with the vendored Chart.js.
 *
 * Classic script, loaded with `defer` after chart.umd.min.js (global `Chart`) and the
 * error-bars plugin (global `ChartErrorBars`). It reads the page's data from the
 * <script type="application/json" id="leaderboard-data"> element written by Django's
 * json_script filter; no inline script, so a strict Content-Security-Policy works.
 *
 * Data: {method, label, intervals, models: [snapshot standings, best first],
 *        history: [{votes, at, scores: {model_id: score}}, oldest first]}.
 *
 * The HTML table and the head-to-head table are the source of truth: the charts' container
 * stays hidden unless this script runs, and is hidden again if drawing fails.
 */
(function () {
  "use strict";

  const PALETTE = [
    "#2f5bea", "#e4572e", "#16794a", "#9b51e0", "#d89b00",
    "#0e8aa5", "#d6336c", "#5c940d", "#6741d9", "#5c6570",
  ];

  function colour(index) {
    return PALETTE[index % PALETTE.length];
  }

  function fade(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }

  function round(value) {
    return Math.round(value).toLocaleString("en");
  }

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function scoresChart(canvas, data, withErrorBars) {
    const models = data.models;
    const intervals = data.intervals && withErrorBars;
    const points = models.map((m) => {
      const point = { y: m.model, x: m.score };
      if (intervals) {
        point.xMin = m.low;
        point.xMax = m.high;
      }
      return point;
    });
    const colours = models.map((_, i) => colour(i));
    return new window.Chart(canvas, {
      type: withErrorBars ? "lineWithErrorBars" : "line",
      data: {
        labels: models.map((m) => m.model),
        datasets: [
          {
            label: data.label,
            data: points,
            showLine: false,
            // The points are "pointWithErrorBar" elements: Chart.js resolves their options with
            // that prefix, not "point", so the unprefixed names are used. Scriptable, not arrays:
            // the error-bar options treat arrays as per-end values.
            radius: 7,
            hoverRadius: 9,
            backgroundColor: (ctx) => colours[ctx.dataIndex],
            borderColor: "#ffffff",
            borderWidth: 2,
            hoverBorderWidth: 2,
            errorBarColor: (ctx) => fade(colours[ctx.dataIndex], 0.8),
            errorBarWhiskerColor: (ctx) => fade(colours[ctx.dataIndex], 0.8),
            errorBarLineWidth: 3,
            errorBarWhiskerLineWidth: 2,
            errorBarWhiskerSize: 12,
          },
        ],
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        layout: { padding: { right: 8 } },
        scales: {
          y: { type: "category", offset: true, grid: { display: false }, ticks: { autoSkip: false } },
          x: {
            type: "linear",
            grace: "4%",
            title: { display: true, text: "Score (Elo scale)" },
            ticks: { precision: 0 },
          },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => items[0].label,
              label: (item) => {
                const m = models[item.dataIndex];
                const score = `${data.label}: ${round(m.score)}`;
                return intervals
                  ? `${score}  (95%: ${round(m.low)} to ${round(m.high)})`
                  : `${score}  (no interval for ELO)`;
              },
            },
          },
        },
      },
    });
  }

  function historyChart(canvas, data) {
    const many = data.history.length > 40;
    const datasets = data.models.map((m, i) => ({
      label: m.model,
      data: data.history
        .filter((s) => String(m.model_id) in s.scores)
        .map((s) => ({ x: s.votes, y: s.scores[String(m.model_id)], at: s.at })),
      borderColor: colour(i),
      backgroundColor: colour(i),
      borderWidth: 2,
      tension: 0.25,
      pointRadius: many ? 0 : 3,
      pointHoverRadius: 5,
      pointBackgroundColor: colour(i),
    }));
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: {
            type: "linear",
            title: { display: true, text: "Votes counted" },
            ticks: { precision: 0 },
          },
          y: { title: { display: true, text: "Score" }, ticks: { precision: 0 } },
        },
        plugins: {
          legend: {
            position: "bottom",
            labels: { usePointStyle: true, pointStyle: "circle", boxWidth: 8, boxHeight: 8 },
          },
          tooltip: {
            callbacks: {
              title: (items) => {
                const raw = items[0].raw;
                const when = new Date(raw.at).toLocaleString();
                return `After ${raw.x} vote${raw.x === 1 ? "" : "s"} (${when})`;
              },
              label: (item) => `${item.dataset.label}: ${round(item.parsed.y)}`,
            },
          },
        },
      },
    });
  }

  function draw() {
    const source = document.getElementById("leaderboard-data");
    const host = document.querySelector("[data-lb-charts]");
    if (!source || !host || typeof window.Chart !== "function") return;
    const data = JSON.parse(source.textContent);
    if (!data.models || data.models.length === 0) return;

    const Chart = window.Chart;
    const errorBars = window.ChartErrorBars;
    const withErrorBars = Boolean(errorBars && errorBars.LineWithErrorBarsController);
    if (withErrorBars) {
      // The UMD build registers itself too; registering again is harmless and explicit.
      Chart.register(errorBars.LineWithErrorBarsController, errorBars.PointWithErrorBar);
    }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = cssVar("--arena-muted", "#5c6570");
    Chart.defaults.borderColor = cssVar("--arena-border", "#dde1e6");
    if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
      Chart.defaults.animation = false;
    }

    // One row per model in the score chart; both charts share the height so the cards line up.
    const height = Math.max(260, Math.min(640, 34 * data.models.length + 80));
    host.hidden = false;
    const charts = [];
    try {
      for (const box of host.querySelectorAll("[data-lb-chart]")) {
        box.style.height = `${height}px`;
      }
      charts.push(scoresChart(document.getElementById("lb-scores-chart"), data, withErrorBars));
      charts.push(historyChart(document.getElementById("lb-history-chart"), data));
    } catch (error) {
      charts.forEach((chart) => chart.destroy());
      host.hidden = true;
      console.warn("leaderboard charts unavailable; the tables hold the same data", error);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
