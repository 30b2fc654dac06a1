// The monitor page: reads /windows (the kept windows, open alerts, the pipeline's versions
// and lags) and draws the newest closed window and the trend of the kept ones.
(() => {
"use strict";

const { lineChart, barChart, numbersTable } = window.charts;
const TOP_MOVERS = 5;
let refreshTimer = null;

function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %"; }
function ms(v) { return v === null || v === undefined ? "–" : v.toFixed(1); }
function num(v) { return v === null || v === undefined ? "–" : String(v); }
function fixed(v, digits) { return v === null || v === undefined ? "–" : v.toFixed(digits); }
function clock(t) { return new Date(t).toTimeString().slice(0, 8); }

// A cell holding a number: the text a person reads, the raw value in data-value.
function cell(value, format, metric) {
  const span = document.createElement("span");
  span.textContent = format(value);
  span.dataset.value = value === null || value === undefined ? "" : String(value);
  if (metric) span.dataset.metric = metric;
  return span;
}

function panel(id) {
  const section = document.getElementById(id);
  return { chart: section.querySelector(".chart"), numbers: section.querySelector(".numbers") };
}

function trend(closed, pick) {
  return closed.slice().reverse().map((w) => [w.start, pick(w)]);
}

function modelsOf(closed) {
  const names = new Set();
  for (const w of closed) for (const m of Object.keys(w.models || {})) names.add(m);
  return Array.from(names).sort();
}

function drawHeader(data, current) {
  const text = current
    ? `window ${clock(current.start)}–${clock(current.end)} (newest closed of ${data.windows.length} kept, ` +
      `${data.window_s} s each) · sample ratio ${data.sample_ratio}`
    : "no closed window yet";
  const line = document.getElementById("window");
  line.textContent = text;
  document.body.dataset.windowStart = current ? String(current.start) : "";
  const versions = document.getElementById("versions");
  const pipeline = data.pipeline || {};
  const chips = [];
  for (const [model, entry] of Object.entries(pipeline.versions || {})) {
    const live = document.createElement("span");
    live.className = "chip";
    live.textContent = `${model} live ${entry.live}`;
    live.dataset.model = model;
    live.dataset.live = entry.live;
    chips.push(live);
    for (const v of entry.shadow) {
      const shadow = document.createElement("span");
      shadow.className = "chip shadow";
      shadow.textContent = `${model} shadow ${v}`;
      chips.push(shadow);
    }
  }
  if (pipeline.errors && pipeline.errors.versions) {
    const err = document.createElement("span");
    err.className = "error";
    err.textContent = pipeline.errors.versions;
    chips.push(err);
  } else if (!chips.length) {
    const none = document.createElement("span");
    none.textContent = pipeline.at ? "no registry entries" : "versions: reading the registry…";
    chips.push(none);
  }
  versions.replaceChildren(...chips);
}

function drawInTime(closed, current) {
  const p = panel("in-time");
  lineChart(p.chart, [{ name: "decided in time", points: trend(closed, (w) => w.decisions ? w.decisions.in_time_rate : null) }],
            { yMax: 1, format: pct });
  const rows = closed.map((w) => [clock(w.start),
    cell(w.decisions ? w.decisions.in_time_rate : null, pct, w === current ? "in_time_rate" : null),
    cell(w.decisions ? w.decisions.in_time : null, num), cell(w.decisions ? w.decisions.count : null, num)]);
  numbersTable(p.numbers, "Share of decisions made by their deadline, per window", ["window", "share", "in time", "decisions"], rows);
}

function drawResults(current) {
  const p = panel("results");
  const bars = [], rows = [];
  const results = current && current.decisions ? current.decisions.results || {} : {};
  for (const [status, byModel] of Object.entries(results)) {
    for (const [model, count] of Object.entries(byModel)) {
      bars.push({ label: `${status} ${model}`, value: count });
      rows.push([status, model, cell(count, num, `results.${status}.${model}`)]);
    }
  }
  barChart(p.chart, bars, { labelAll: true, format: (v) => v.toFixed(0) });
  numbersTable(p.numbers, "Decisions of the newest closed window by status and chosen model", ["status", "model", "decisions"], rows);
}

function drawLatency(closed, current) {
  const p = panel("latency");
  const series = [];
  for (const model of modelsOf(closed)) {
    series.push({ name: `${model} p99`, points: trend(closed, (w) => w.models[model] ? w.models[model].latency_ms.p99 : null) });
  }
  series.push({ name: "end to end p99", points: trend(closed, (w) => w.decisions ? w.decisions.end_to_end_ms.p99 : null), dashed: true });
  lineChart(p.chart, series, { format: (v) => v.toFixed(0) });
  const rows = [];
  if (current) {
    for (const [model, m] of Object.entries(current.models)) {
      rows.push([model, cell(m.latency_ms.p50, ms, `latency.${model}.p50`), cell(m.latency_ms.p99, ms, `latency.${model}.p99`)]);
    }
    if (current.decisions) {
      const e = current.decisions.end_to_end_ms;
      rows.push(["end to end", cell(e.p50, ms, "latency.end_to_end.p50"), cell(e.p99, ms, "latency.end_to_end.p99")]);
    }
  }
  numbersTable(p.numbers, "Latency of the newest closed window, ms", ["model", "p50", "p99"], rows);
}

function drawRates(closed, current, thresholds) {
  const p = panel("rates");
  lineChart(p.chart, [
    { name: "fallback", points: trend(closed, (w) => w.decisions ? w.decisions.rates.fallback : null) },
    { name: "timeout", points: trend(closed, (w) => w.decisions ? w.decisions.rates.timeout : null) },
  ], { format: pct, threshold: thresholds.max_timeout_rate });
  const rows = closed.map((w) => [clock(w.start),
    cell(w.decisions ? w.decisions.rates.fallback : null, pct, w === current ? "rate.fallback" : null),
    cell(w.decisions ? w.decisions.rates.timeout : null, pct, w === current ? "rate.timeout" : null)]);
  numbersTable(p.numbers, "Fallback and timeout rates per window", ["window", "fallback", "timeout"], rows);
}

function drawDrift(current, thresholds) {
  const p = panel("drift");
  const psi = current && current.drift ? current.drift.psi : {};
  const limit = thresholds.max_psi;
  const ranked = Object.entries(psi).filter(([, v]) => v !== null).sort((a, b) => b[1] - a[1]);
  const top = new Set(ranked.slice(0, TOP_MOVERS).map(([name]) => name));
  const state = (v) => (limit !== null && v !== null && v > limit ? "alert" : "ok");
  const bars = Object.entries(psi).map(([name, v]) => ({ key: name, label: name, value: v || 0,
                                                         state: state(v), top: top.has(name) }));
  barChart(p.chart, bars, { threshold: limit, format: (v) => v.toFixed(2) });
  const rows = ranked.concat(Object.entries(psi).filter(([, v]) => v === null)).map(([name, v]) => {
    const mark = document.createElement("span");
    mark.className = "marker";
    mark.dataset.state = state(v);
    mark.dataset.feature = name;
    mark.textContent = state(v) === "alert" ? "over threshold" : "within";
    return [top.has(name) ? `${name} (top mover)` : name, cell(v, (x) => fixed(x, 3), `psi.${name}`), mark];
  });
  numbersTable(p.numbers, `PSI per feature in the newest closed window (alert over ${limit})`, ["feature", "PSI", "state"], rows);
}

function drawDisagreement(closed, current, thresholds) {
  const p = panel("disagreement");
  lineChart(p.chart, [{ name: "disagreement", points: trend(closed, (w) => w.pair ? w.pair.disagreement : null) },
                      { name: "rank gap", points: trend(closed, (w) => w.pair ? w.pair.rank_gap : null), dashed: true }],
            { format: pct, threshold: thresholds.max_disagreement });
  const rows = closed.map((w) => [clock(w.start),
    cell(w.pair ? w.pair.disagreement : null, pct, w === current ? "disagreement" : null),
    cell(w.pair ? w.pair.both : null, num)]);
  numbersTable(p.numbers, "Canary and primary predicting different classes, per window", ["window", "disagreement", "pairs"], rows);
}

function drawAccuracy(closed, current) {
  const p = panel("accuracy");
  const subject = (model, m) => (m.version && !model.endsWith(":shadow") ? `${model}@${m.version}` : model);
  const names = new Map();
  for (const w of closed) for (const [model, m] of Object.entries(w.models)) if (m.feedback) names.set(subject(model, m), model);
  const series = Array.from(names).map(([name, model]) => ({ name, points: trend(closed, (w) => {
    const m = w.models[model];
    return m && m.feedback && subject(model, m) === name ? m.feedback.accuracy : null;
  }) }));
  lineChart(p.chart, series, { yMax: 1, format: pct });
  const rows = [];
  if (current) {
    for (const [model, m] of Object.entries(current.models)) {
      if (!m.feedback) continue;
      rows.push([subject(model, m), cell(m.feedback.accuracy, pct, `accuracy.${model}`),
                 cell(m.feedback.labelled, num), cell(m.feedback.auc, (x) => fixed(x, 3))]);
    }
  }
  numbersTable(p.numbers, "Accuracy on requests whose label came, newest closed window", ["model version", "accuracy", "labelled", "AUC"], rows);
}

function drawLag(pipeline) {
  const p = panel("lag");
  const lag = pipeline.lag || {};
  const bars = Object.entries(lag).map(([group, l]) => ({ label: group, value: l.total }));
  barChart(p.chart, bars, { labelAll: true, format: (v) => v.toFixed(0) });
  const rows = Object.entries(lag).map(([group, l]) => [group, cell(l.total, num, `lag.${group}`),
    Object.entries(l.topics).map(([t, n]) => `${t} ${n}`).join(", ")]);
  const caption = pipeline.errors && pipeline.errors.lag ? pipeline.errors.lag
    : `Records not yet committed per consumer group${pipeline.at ? " at " + clock(pipeline.at) : ""}`;
  numbersTable(p.numbers, caption, ["group", "lag", "per topic"], rows);
}

function drawAlerts(open) {
  const p = panel("alerts");
  const rows = open.map((a) => [a.cause, a.subject, cell(a.value, (x) => fixed(x, 3)), num(a.threshold), clock(a.since)]);
  const table = numbersTable(p.numbers, open.length ? `${open.length} open` : "none open", ["cause", "on", "value", "threshold", "since"], rows, true);
  table.id = "open-alerts";
}

function draw(data) {
  const closed = data.windows.filter((w) => w.closed);
  const current = closed[0] || null;
  const thresholds = data.thresholds || {};
  drawHeader(data, current);
  drawInTime(closed, current);
  drawResults(current);
  drawLatency(closed, current);
  drawRates(closed, current, thresholds);
  drawDrift(current, thresholds);
  drawDisagreement(closed, current, thresholds);
  drawAccuracy(closed, current);
  drawLag(data.pipeline || {});
  drawAlerts(data.open_alerts || []);
  document.body.dataset.drawn = String(Date.now());
}

function schedule(seconds) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, seconds * 1000);
}

async function refresh() {
  let response;
  try {
    response = await fetch("/windows", { credentials: "same-origin", cache: "no-store" });
  } catch (err) {
    document.getElementById("window").textContent = "monitor unreachable; retrying";
    schedule(5);
    return;
  }
  if (response.status === 401) {
    document.getElementById("login").hidden = false;
    return;
  }
  const data = await response.json();
  document.getElementById("login").hidden = true;
  draw(data);
  // every window is drawn within half a window of its close (at most 5 s)
  schedule(Math.min(Math.max((data.window_s || 10) / 2, 1), 5));
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("key");
  const response = await fetch("/login", { method: "POST", credentials: "same-origin",
                                           body: new URLSearchParams({ key: input.value }) });
  input.value = "";
  if (response.ok) {
    document.getElementById("login-error").textContent = "";
    refresh();
  } else {
    document.getElementById("login-error").textContent = await response.text();
  }
});

refresh();
})();
