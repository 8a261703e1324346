// The overview's charts: messages in and out per minute, one line per channel, drawn with uPlot
// (static/vendor/uplot) from the figures the page carries in #traffic-data. The tables under them hold
// the same figures and are all there is without JavaScript; with it, the per-minute table folds away
// under its summary. live.js re-reads the page every few seconds; the charts then take the new figures.
(function () {
  "use strict";
  const COLORS = ["#0b5cad", "#17803d", "#b42318", "#a15c00", "#6941c6", "#0e7490", "#be185d"];
  const HEIGHT = 180;
  const charts = {}; // "in" | "out" → {channels, plot}

  function figures() {
    const island = document.getElementById("traffic-data");
    if (!island) return null;
    try { return JSON.parse(island.textContent); } catch (error) { return null; }
  }

  function options(data, host) {
    return {
      width: Math.max(240, host.clientWidth),
      height: HEIGHT,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"), // as the tables: UTC
      series: [
        {},
        ...data.channels.map((channel, index) => ({
          label: channel,
          stroke: COLORS[index % COLORS.length],
          width: 2,
          points: { show: false },
        })),
      ],
      scales: { y: { range: (plot, min, max) => [0, Math.max(1, max)] } },
      axes: [
        { values: (plot, ticks) => ticks.map((seconds) => new Date(seconds * 1000).toISOString().slice(11, 16)) },
        { size: 44, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000] },
      ],
    };
  }

  function draw() {
    const data = figures();
    const box = document.getElementById("traffic-charts");
    if (!data || !box || typeof uPlot === "undefined" || !data.channels.length) return;
    box.hidden = false;
    for (const flow of ["in", "out"]) {
      const host = box.querySelector(`[data-chart="${flow}"]`);
      const columns = [data.x, ...data[flow]];
      const channels = data.channels.join(",");
      const chart = charts[flow];
      if (chart && chart.channels === channels) {
        chart.plot.setData(columns);
      } else {
        if (chart) chart.plot.destroy();
        charts[flow] = { channels, host, plot: new uPlot(options(data, host), columns, host) };
      }
    }
  }

  // The CSAT card's average score per day (#csat-data; its table holds the same figures). live.js
  // replaces the card on each refresh, so the chart is drawn anew in the new card.
  const CSAT_HEIGHT = 140;
  let csat = null;
  function drawCsat() {
    const island = document.getElementById("csat-data");
    const box = document.getElementById("csat-chart");
    if (!island || !box || typeof uPlot === "undefined") return;
    let data;
    try { data = JSON.parse(island.textContent); } catch (error) { return; }
    const host = box.querySelector('[data-chart="csat"]');
    if (csat && csat.host === host) { csat.plot.setData([data.x, data.average]); return; }
    if (csat) csat.plot.destroy();
    box.hidden = false;
    // The days are UTC, as the table's: ticks and the hovered day in UTC whatever the browser's zone
    // (in local time a browser west of UTC would name the day before).
    const day = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);
    const opts = {
      width: Math.max(240, host.clientWidth),
      height: CSAT_HEIGHT,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      series: [
        { label: "Day (UTC)", value: (plot, seconds) => (seconds == null ? "--" : day(seconds)) },
        { label: "average", stroke: COLORS[1], width: 2, spanGaps: true },
      ],
      scales: { x: { time: true }, y: { range: (plot, min, max) => [1, Math.max(5, max || 5)] } },
      axes: [{ values: (plot, ticks) => ticks.map((s) => new Date(s * 1000).toISOString().slice(5, 10)) }, { size: 36 }],
    };
    csat = { host, plot: new uPlot(opts, [data.x, data.average], host) };
  }

  document.addEventListener("DOMContentLoaded", () => {
    drawCsat();
    draw();
    const table = document.getElementById("traffic-minutes");
    if (table && charts.in) table.open = false; // the charts show it; the table stays one click away
  });
  document.addEventListener("cc:regions", draw);
  document.addEventListener("cc:regions", drawCsat);
  window.addEventListener("resize", () => {
    for (const chart of Object.values(charts)) chart.plot.setSize({ width: Math.max(240, chart.host.clientWidth), height: HEIGHT });
    if (csat) csat.plot.setSize({ width: Math.max(240, csat.host.clientWidth), height: CSAT_HEIGHT });
  });
})();
