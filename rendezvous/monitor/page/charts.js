// Hand-drawn SVG charts for the monitor page: a line chart over windows and a bar chart.
// No library: two chart kinds, drawn with DOM calls (textContent only: names come from
// records and manifests, never parsed as markup).
(() => {
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#0969da", "#bf8700", "#8250df", "#1a7f37", "#cf222e", "#57606a", "#e16f24"];

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function canvas(container) {
  container.replaceChildren();
  const width = Math.max(container.clientWidth, 200);
  const height = Math.max(container.clientHeight, 80);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true",
                              focusable: "false" });
  container.appendChild(svg);
  return { svg, width, height };
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

function clock(ms) {
  return new Date(ms).toTimeString().slice(0, 8);
}

// series: [{name, points: [[x (epoch ms), y or null]], dashed}]; options: {yMax, format,
// threshold}. Each series keeps its colour by its position.
function lineChart(container, series, options) {
  const { svg, width, height } = canvas(container);
  const format = options.format || ((v) => String(v));
  const left = 44, right = 8, top = 14, bottom = 16;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v !== null);
  if (options.threshold !== undefined && options.threshold !== null) ys.push(options.threshold);
  if (!xs.length) {
    svg.appendChild(svgEl("text", { x: left, y: height / 2, class: "axis-label" }, "no data yet"));
    return;
  }
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const yMax = options.yMax || niceMax(Math.max(...ys, 0));
  const px = (x) => left + (x1 === x0 ? (width - left - right) / 2
                                      : (x - x0) / (x1 - x0) * (width - left - right));
  const py = (y) => top + (1 - Math.min(y, yMax) / yMax) * (height - top - bottom);
  for (const frac of [0, 0.5, 1]) {
    const y = py(frac * yMax);
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y, y2: y, class: "axis" }));
    svg.appendChild(svgEl("text", { x: left - 4, y: y + 3, "text-anchor": "end",
                                    class: "axis-label" }, format(frac * yMax)));
  }
  svg.appendChild(svgEl("text", { x: left, y: height - 3, class: "axis-label" }, clock(x0)));
  svg.appendChild(svgEl("text", { x: width - right, y: height - 3, "text-anchor": "end",
                                  class: "axis-label" }, clock(x1)));
  if (options.threshold !== undefined && options.threshold !== null) {
    const y = py(options.threshold);
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y, y2: y,
                                    class: "threshold" }));
  }
  let legendX = left, legendY = 10;
  series.forEach((s, i) => {
    const colour = s.colour || PALETTE[i % PALETTE.length];
    const drawn = s.points.filter((p) => p[1] !== null);
    if (drawn.length) {
      const d = drawn.map((p, j) => `${j ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`);
      svg.appendChild(svgEl("path", { d: d.join(""), fill: "none", stroke: colour,
                                      "stroke-width": 2,
                                      "stroke-dasharray": s.dashed ? "4 3" : "none" }));
      const last = drawn[drawn.length - 1];
      svg.appendChild(svgEl("circle", { cx: px(last[0]), cy: py(last[1]), r: 2.5, fill: colour }));
    }
    const labelWidth = 6.2 * s.name.length;
    if (legendX > left && legendX + labelWidth > width - right) {  // next line
      legendX = left;
      legendY += 11;
    }
    svg.appendChild(svgEl("text", { x: legendX, y: legendY, class: "legend", fill: colour },
                          s.name));
    legendX += 8 + labelWidth;
  });
}

// bars: [{label, value, state ("alert"|"ok"|undefined), top (bool), key}]; vertical bars.
function barChart(container, bars, options) {
  const { svg, width, height } = canvas(container);
  const format = options.format || ((v) => String(v));
  const left = 44, right = 8, top = 8, bottom = options.labelAll ? 30 : 18;
  const placed = [];  // x ranges of the labels drawn: a label that would overlap is left out
  if (!bars.length) {
    svg.appendChild(svgEl("text", { x: left, y: height / 2, class: "axis-label" }, "no data yet"));
    return;
  }
  const values = bars.map((b) => b.value || 0);
  if (options.threshold !== undefined && options.threshold !== null) values.push(options.threshold);
  const yMax = niceMax(Math.max(...values));
  const py = (y) => top + (1 - Math.min(y, yMax) / yMax) * (height - top - bottom);
  const slot = (width - left - right) / bars.length;
  for (const frac of [0, 0.5, 1]) {
    const y = py(frac * yMax);
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y, y2: y, class: "axis" }));
    svg.appendChild(svgEl("text", { x: left - 4, y: y + 3, "text-anchor": "end",
                                    class: "axis-label" }, format(frac * yMax)));
  }
  bars.forEach((b, i) => {
    const x = left + i * slot + slot * 0.15;
    const y = py(b.value || 0);
    const attrs = { x: x.toFixed(1), y: y.toFixed(1), width: Math.max(slot * 0.7, 1).toFixed(1),
                    height: Math.max(py(0) - y, 1).toFixed(1) };
    if (b.state) {  // a bar with a state: coloured by it, a marker dot under it
      attrs.class = "bar" + (b.top ? " top-bar" : "");
      attrs["data-state"] = b.state;
      svg.appendChild(svgEl("rect", attrs));
      svg.appendChild(svgEl("circle", { cx: (x + slot * 0.35).toFixed(1), cy: py(0) + 8,
                                        r: Math.min(Math.max(slot * 0.3, 2), 5),
                                        class: "marker", "data-state": b.state,
                                        "data-feature": b.key }));
    } else {
      attrs.fill = PALETTE[i % PALETTE.length];
      svg.appendChild(svgEl("rect", attrs));
    }
    const centre = x + slot * 0.35;
    const half = 3.2 * b.label.length;
    const free = !placed.some(([a, z]) => centre - half < z && centre + half > a);
    if (options.labelAll || (b.top && free)) {
      placed.push([centre - half, centre + half]);
      svg.appendChild(svgEl("text", { x: Math.min(Math.max(centre, left + half), width - half).toFixed(1),
                                      y: options.labelAll ? height - 16 : Math.max(y - 3, 10),
                                      "text-anchor": "middle",
                                      class: "axis-label" + (b.top ? " top" : "") }, b.label));
    }
  });
  if (options.threshold !== undefined && options.threshold !== null) {
    const y = py(options.threshold);
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y, y2: y,
                                    class: "threshold" }));
  }
}

// A table of numbers under a chart: visually hidden unless `visible`, read by screen readers.
function numbersTable(container, caption, headers, rows, visible) {
  const table = document.createElement("table");
  if (!visible) table.className = "sr-only";
  const cap = document.createElement("caption");
  cap.textContent = caption;
  table.appendChild(cap);
  const head = table.createTHead().insertRow();
  for (const h of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) {
      const td = tr.insertCell();
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
    }
  }
  container.replaceChildren(table);
  return table;
}

window.charts = { lineChart, barChart, numbersTable, PALETTE };
})();
