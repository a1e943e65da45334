// The dashboard: reads the public /v1 API with the organization's token and draws it with
// plotly.js (served by the API from the installed plotly package; nothing comes from elsewhere).
// Under the API's Content-Security-Policy: no inline script, no HTML built from strings. Text from
// the API (a tenant's tournament formats, report names) reaches the page as text nodes, and plotly,
// which reads <b>, <a href> and the like in its labels, gets it with those characters escaped.
"use strict";

const TOKEN_KEY = "analytics.token";
const COLORS = {
  mrr: "#3056d3", arr: "#23a98a", new: "#1f9d6b", expansion: "#58c79a", reactivation: "#8fd3b6",
  contraction: "#f0a04b", churn: "#d64545", total: "#3056d3", bars: "#5b8cff", line: "#f0a04b",
};
// A template: plotly writes what it works out (axis types, ranges) into the layout it is given, so
// each chart gets a deep copy.
const LAYOUT = Object.freeze({
  margin: { l: 56, r: 20, t: 8, b: 40 },
  paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  font: { family: "Inter, Segoe UI, Helvetica Neue, Arial, sans-serif", size: 12, color: "#1c2433" },
  xaxis: { gridcolor: "#eef1f6", linecolor: "#e3e7ef" },
  yaxis: { gridcolor: "#eef1f6", zerolinecolor: "#d5dae4" },
  legend: { orientation: "h", y: -0.18 },
  hovermode: "x unified",
});
const CONFIG = { displayModeBar: false, responsive: true };
const TILES = [
  ["mrr", "MRR"], ["arr", "ARR"], ["net_new_mrr", "Net new MRR"],
  ["new_revenue", "New MRR"], ["contraction_revenue", "Contraction MRR"], ["churned_revenue", "Churned MRR"],
  ["total_revenue", "Revenue"], ["refund_amount", "Refunded amount"], ["refund_count", "Refunds"],
  ["churned_customers", "Churned customers"],
  // The SaaS KPIs (docs/metrics.md#kpis); the trailing-twelve-month ones exist for months only.
  ["active_customers", "Active customers"], ["arpa", "ARPA"], ["logo_churn_rate", "Logo churn"],
  ["gross_mrr_churn_rate", "Gross MRR churn"], ["net_mrr_churn_rate", "Net MRR churn"], ["quick_ratio", "Quick ratio"],
  ["grr", "GRR"], ["nrr", "NRR"], ["ttm_grr", "TTM GRR", "month"], ["ttm_nrr", "TTM NRR", "month"],
];
// Whether a change is good or bad news comes with each KPI (`polarity`, from the one table in
// analytics_pipeline/core/polarity.py that the reports read too): churn or refunds rising is red,
// MRR rising green, a neutral figure grey.
const TONE = {
  higher_is_better: (change) => (change > 0 ? "good" : "bad"),
  lower_is_better: (change) => (change < 0 ? "good" : "bad"),
  neutral: () => "neutral",
};
// The aggregates the page shows, each with when it was computed (every response's data_updated_at,
// and data_stale_after: docs/api.md#freshness); the ages are redrawn every few seconds.
const FRESHNESS_LABELS = [
  ["revenue_aggregates", "Revenue"], ["revenue_segments", "Segments"], ["tournament_aggregates", "Tournaments"],
  ["user_cohorts", "Cohorts"], ["user_cohort_segments", "Cohort segments"],
];
const FRESHNESS_REDRAW_MS = 5000;
let freshness = {};

const $ = (id) => document.getElementById(id);
const amount = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

// A KPI's value as its unit reads: ratios (fractions, as the API gives every rate) in percent;
// null (a denominator of 0) is "n/a", never 0. The tile adds an amount's currency.
function formatKpi(value, unit) {
  if (value === null) return "n/a";
  if (unit === "count") return count.format(value);
  if (unit === "ratio") return percent.format(value);
  return amount.format(value);
}
let renders = 0;

// By segment (/v1/revenue/segments), the MRR chart stacks the values with the most MRR over the
// range, each an area, and sums the rest as one "Other"; the movements chart has a bar per value.
const TOP_SEGMENT_VALUES = 10;
const OTHER = "Other";
const SEGMENT_COLORS = ["#3056d3", "#23a98a", "#f0a04b", "#8a63d2", "#d64545", "#5bc0de", "#1f9d6b", "#c9578c",
  "#7f8c3a", "#b5651d"];
const OTHER_COLOR = "#9aa3b2";
// By segment, a table of each value's key figures (/v1/kpis/segments, docs/metrics.md#segment-kpis:
// a transfer between values is not churn), and the cohort heatmap of one value at a time
// (/v1/cohorts/segments: by the plan of the users' first subscription, or by signup source;
// cohorts have no interval).
const SEGMENT_KPIS = [
  ["mrr", "MRR"], ["net_new_mrr", "Net new MRR"], ["active_customers", "Customers"], ["arpa", "ARPA"],
  ["logo_churn_rate", "Customer churn"], ["gross_mrr_churn_rate", "Gross MRR churn"], ["grr", "GRR"], ["nrr", "NRR"],
  ["quick_ratio", "Quick ratio"], ["transfer_in_revenue", "Transfers in"], ["transfer_out_revenue", "Transfers out"],
];
const SEGMENT_NAMES = { plan: "plan", interval: "billing interval", source: "source" };
const COHORT_SEGMENTS = { plan: "first plan", source: "signup source" };
let cohortSegments = null;

class SignInNeeded extends Error {}

function isoDay(date) { return date.toISOString().slice(0, 10); }
function todayUtc() { return isoDay(new Date()); }
function monthsBefore(day, months) {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCMonth(d.getUTCMonth() - months);
  d.setUTCDate(d.getUTCDate() + 1);
  return isoDay(d);
}
function minDay(a, b) { return a < b ? a : b; }

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function takeTokenFromUrl() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function api(path, query) {
  const url = path + "?" + new URLSearchParams(query).toString();
  const response = await fetch(url, { headers: { Authorization: "Bearer " + token() } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) throw new SignInNeeded(body.detail || "sign in again");
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function showSignIn(message) {
  $("dashboard").hidden = true;
  $("sign-in").hidden = false;
  $("controls").style.visibility = "hidden";
  $("sign-in-message").textContent = message;
  document.body.dataset.state = "signed-out";
}

function showDashboard() {
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("controls").style.visibility = "visible";
}

function range() {
  return {
    period_type: $("period-type").value, from: $("date-from").value, to: $("date-to").value, compare: $("compare").value,
    segment: $("segment").value,
  };
}

// An element with its class and children (strings become text nodes, never markup).
function el(tag, className, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.append(...children);
  return element;
}

// Text plotly shows as it is: plotly reads a subset of HTML in labels and decodes entities, so the
// characters that would start a tag or an entity are given as entities.
function plotlyText(text) {
  return String(text).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" }[c]));
}

function plot(id, traces, layout) {
  const element = $(id);
  if (!traces.length) {
    Plotly.purge(element);
    element.replaceChildren(el("div", "empty", "No data in this range"));
    return;
  }
  // Only the "no data" note is removed: plotly's own elements stay for Plotly.react to update
  // (removed, a chart drawn before would not be drawn again).
  element.querySelector(":scope > .empty")?.remove();
  Plotly.react(element, traces, structuredClone({ ...LAYOUT, ...layout }), CONFIG);
}

// A KPI's change as its tile and the segment table show it: the arrow, the change (points for a
// ratio, percent otherwise) and its tone by the KPI's polarity.
function kpiChange(k) {
  const points = k.unit === "ratio";
  const change = points ? k.change_points : k.change_pct;
  const tone = !change ? "neutral" : (TONE[k.polarity] || TONE.neutral)(change);
  const arrow = change === null ? "" : change > 0 ? "▲ " : change < 0 ? "▼ " : "";
  return { change, tone, text: change === null ? "" : arrow + Math.abs(change) + (points ? " pp" : "%") };
}

function renderTiles(kpis) {
  const byName = Object.fromEntries(kpis.kpis.map((k) => [k.kpi, k]));
  const label = kpis.previous.label;
  $("tiles").replaceChildren();
  for (const [name, title, onlyFor] of TILES) {
    const k = byName[name];
    if (!k || (onlyFor && onlyFor !== kpis.period_type)) continue;
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.kpi = name;
    // A ratio changes by percentage points; everything else by percent of its previous value.
    const { change, tone, text } = kpiChange(k);
    // No change: the KPI has no value now (n/a above), none for the days compared, or those were 0.
    const delta = change !== null ? text + " vs " + label
      : k.current === null ? "" : k.previous === null ? "n/a for " + label : "none in " + label;
    const value = el("div", "value", formatKpi(k.current, k.unit));
    if (k.unit === "amount" && k.current !== null) value.append(el("span", "currency", " " + kpis.currency));
    value.dataset.value = k.current === null ? "" : String(k.current);
    const deltaLine = el("div", `delta ${tone}`, delta);
    deltaLine.dataset.tone = tone;
    tile.append(el("div", "label", title), value, deltaLine);
    $("tiles").appendChild(tile);
  }
  $("tiles").dataset.periodStart = kpis.period_start;
  // Which days the tiles compare: the period to date against as many days of the one before
  // (the API's default), or two complete periods (docs/api.md#kpis).
  const how = kpis.compare === "to_date" && !kpis.current.whole_period ? "period to date" : "complete periods";
  $("comparison").textContent = `Key figures: ${kpis.label} (${how})`;
}

function renderRevenue(series) {
  const x = series.rows.map((r) => r.period_start);
  // ARR is 12 x MRR: its axis is the MRR axis times twelve, so both lines read on one curve.
  const top = Math.max(1, ...series.rows.map((r) => r.mrr)) * 1.08;
  plot("chart-mrr", series.rows.length ? [
    { x, y: series.rows.map((r) => r.mrr), name: "MRR", type: "scatter", mode: "lines", line: { color: COLORS.mrr, width: 2.5 }, fill: "tozeroy", fillcolor: "rgba(48,86,211,0.08)" },
    { x, y: series.rows.map((r) => r.arr), name: "ARR (right axis)", type: "scatter", mode: "lines", yaxis: "y2", line: { color: COLORS.arr, width: 1.5, dash: "dot" } },
  ] : [], {
    yaxis: { ...LAYOUT.yaxis, title: { text: `MRR (${series.currency})` }, tickformat: ".3~s", range: [0, top] },
    yaxis2: { overlaying: "y", side: "right", showgrid: false, title: { text: `ARR (${series.currency})` }, tickformat: ".3~s", range: [0, top * 12] },
    margin: { ...LAYOUT.margin, r: 60 },
  });
}

// The segment rows by value: the TOP_SEGMENT_VALUES values with the most MRR summed over the range
// and "Other", the rest together; per value and period, `figure(row)` summed (0 without a row).
function bySegmentValue(rows, ranking, figure) {
  const total = {};
  for (const r of ranking) total[r.value] = (total[r.value] || 0) + r.mrr;
  const ranked = Object.keys(total).sort((a, b) => total[b] - total[a] || (a < b ? -1 : 1));
  const top = new Set(ranked.slice(0, TOP_SEGMENT_VALUES));
  const rest = ranked.length > TOP_SEGMENT_VALUES || rows.some((r) => !top.has(r.value));
  const names = rest ? [...top, OTHER] : [...top];
  const periods = [...new Set(rows.map((r) => r.period_start))].sort();
  const sums = Object.fromEntries(names.map((name) => [name, Object.fromEntries(periods.map((p) => [p, 0]))]));
  for (const r of rows) {
    const name = top.has(r.value) ? r.value : OTHER;
    if (sums[name]) sums[name][r.period_start] += figure(r);
  }
  return names.map((name, i) => ({
    name, color: name === OTHER ? OTHER_COLOR : SEGMENT_COLORS[i % SEGMENT_COLORS.length],
    x: periods, y: periods.map((p) => Math.round(sums[name][p] * 100) / 100),
  }));
}

function renderSegmentedRevenue(segments) {
  const values = bySegmentValue(segments.rows, segments.rows, (r) => r.mrr);
  plot("chart-mrr", values.map((v) => ({
    x: v.x, y: v.y, name: plotlyText(v.name), type: "scatter", mode: "lines", stackgroup: "mrr",
    line: { color: v.color, width: 1 },
  })), {
    yaxis: { ...LAYOUT.yaxis, title: { text: `MRR (${segments.currency}) by ${segments.segment}` }, tickformat: ".3~s" },
  });
  $("chart-mrr").dataset.segment = segments.segment;
}

// A value's net MRR movement: its five movements and its transfers in and out
// (docs/metrics.md#segment-movements); the transfers of a dimension cancel out, so the bars of a
// month add up to its net new MRR.
function netMovement(r) {
  return r.new_revenue + r.expansion_revenue + r.reactivation_revenue - r.contraction_revenue - r.churned_revenue
    + r.transfer_in_revenue - r.transfer_out_revenue;
}

function renderSegmentedMovements(months, ranking) {
  const values = bySegmentValue(months.rows, ranking.rows, netMovement);
  const x = (v) => v.x.map((p) => p.slice(0, 7));
  const net = values.length ? values[0].x.map((_, i) => values.reduce((sum, v) => sum + v.y[i], 0)) : [];
  plot("chart-movements", values.length ? [
    ...values.map((v) => ({ x: x(v), y: v.y, name: plotlyText(v.name), type: "bar", marker: { color: v.color } })),
    { x: x(values[0]), y: net.map((n) => Math.round(n * 100) / 100), name: "Net", type: "scatter",
      mode: "lines+markers", line: { color: "#1c2433", width: 1.5 } },
  ] : [], {
    barmode: "relative",
    yaxis: { ...LAYOUT.yaxis, title: { text: `${months.currency}, net by ${months.segment}` }, tickformat: ".3~s" },
  });
}

function renderBridge(bridge) {
  const steps = [
    ["Opening", bridge.opening_mrr, "absolute"],
    ["New", bridge.new_revenue, "relative"],
    ["Expansion", bridge.expansion_revenue, "relative"],
    ["Reactivation", bridge.reactivation_revenue, "relative"],
    ["Contraction", -bridge.contraction_revenue, "relative"],
    ["Churn", -bridge.churned_revenue, "relative"],
    ["Closing", 0, "total"],
  ];
  const empty = steps.every(([, value]) => value === 0) && bridge.closing_mrr === 0;
  plot("chart-bridge", empty ? [] : [{
    type: "waterfall", x: steps.map((s) => s[0]), y: steps.map((s) => s[1]), measure: steps.map((s) => s[2]),
    connector: { line: { color: "#c5ccd9" } },
    increasing: { marker: { color: COLORS.new } }, decreasing: { marker: { color: COLORS.churn } },
    totals: { marker: { color: COLORS.total } },
    text: steps.map((s, i) => (i === steps.length - 1 ? compact.format(bridge.closing_mrr) : compact.format(s[1]))),
    textposition: "outside", cliponaxis: false,
  }], {
    showlegend: false, hovermode: "closest",
    xaxis: { ...LAYOUT.xaxis, type: "category" }, yaxis: { ...LAYOUT.yaxis, title: { text: bridge.currency }, tickformat: ".3~s" },
  });
}

function renderMovements(months) {
  const x = months.rows.map((r) => r.period_start.slice(0, 7));
  const bar = (name, key, color, sign) => ({
    x, y: months.rows.map((r) => sign * r[key]), name, type: "bar", marker: { color },
  });
  plot("chart-movements", months.rows.length ? [
    bar("New", "new_revenue", COLORS.new, 1),
    bar("Expansion", "expansion_revenue", COLORS.expansion, 1),
    bar("Reactivation", "reactivation_revenue", COLORS.reactivation, 1),
    bar("Contraction", "contraction_revenue", COLORS.contraction, -1),
    bar("Churn", "churned_revenue", COLORS.churn, -1),
    {
      x, name: "Net", type: "scatter", mode: "lines+markers", line: { color: "#1c2433", width: 1.5 },
      y: months.rows.map((r) => r.new_revenue + r.expansion_revenue + r.reactivation_revenue - r.contraction_revenue - r.churned_revenue),
    },
  ] : [], { barmode: "relative", yaxis: { ...LAYOUT.yaxis, title: { text: months.currency }, tickformat: ".3~s" } });
}

function renderSegmentKpis(body) {
  const label = body.previous.label;
  const header = el("tr", "", el("th", "", SEGMENT_NAMES[body.segment][0].toUpperCase() + SEGMENT_NAMES[body.segment].slice(1)),
    ...SEGMENT_KPIS.map(([, title]) => el("th", "number", title)));
  const rows = body.values.map((v) => {
    const byName = Object.fromEntries(v.kpis.map((k) => [k.kpi, k]));
    const row = el("tr", "", el("td", "", v.value));
    row.dataset.value = v.value;
    for (const [name] of SEGMENT_KPIS) {
      const k = byName[name];
      const value = el("span", "value", formatKpi(k.current, k.unit));
      value.dataset.value = k.current === null ? "" : String(k.current);
      const change = kpiChange(k);
      const changeLine = el("span", `change ${change.tone}`, change.text);
      changeLine.dataset.tone = change.tone;
      const cell = el("td", "number", value, changeLine);
      cell.dataset.kpi = name;
      row.append(cell);
    }
    return row;
  });
  $("segment-kpis-title").textContent = `Key figures by ${SEGMENT_NAMES[body.segment]}: ${body.label} (${body.currency}; changes vs ${label})`;
  $("segment-kpis").replaceChildren(body.values.length
    ? el("table", "", el("thead", "", header), el("tbody", "", ...rows))
    : el("div", "empty", "No data in this range"));
}

// The values of a cohort triangle by segment, largest first (their users summed over the cohorts).
function cohortValues(body) {
  const size = {};
  for (const r of body.rows) if (r.month_number === 0) size[r.value] = (size[r.value] || 0) + r.cohort_size;
  return Object.keys(size).sort((a, b) => size[b] - size[a] || (a < b ? -1 : 1));
}

// The heatmap of the picked value (the largest one at first, kept while it is still there).
function renderCohortSegments(body) {
  const values = cohortValues(body);
  const picker = $("cohort-value");
  const picked = values.includes(picker.value) ? picker.value : values[0];
  picker.replaceChildren(...values.map((value) => el("option", "", value)));
  for (const option of picker.options) option.value = option.textContent;
  if (picked !== undefined) picker.value = picked;
  $("cohort-value-picker").hidden = false;
  renderCohortValue(body, picked);
}

function renderCohortValue(body, value) {
  $("cohorts-title").textContent = `Cohort retention by ${COHORT_SEGMENTS[body.segment]}: ${value ?? "none"} (% of cohort active)`;
  renderCohorts({ ...body, rows: body.rows.filter((r) => r.value === value) });
  $("chart-cohorts").dataset.segment = body.segment;
  $("chart-cohorts").dataset.value = value ?? "";
}

function renderCohorts(cohorts) {
  const months = [...new Set(cohorts.rows.map((r) => r.cohort_month.slice(0, 7)))];
  const width = Math.max(0, ...cohorts.rows.map((r) => r.month_number)) + 1;
  const z = months.map(() => Array(width).fill(null));
  const text = months.map(() => Array(width).fill(""));
  for (const r of cohorts.rows) {
    const row = months.indexOf(r.cohort_month.slice(0, 7));
    z[row][r.month_number] = r.retention_rate;
    text[row][r.month_number] = `${r.retained_users} of ${r.cohort_size} users<br>LTV ${amount.format(r.ltv)} ${cohorts.currency}`;
  }
  // retention_rate is a fraction (1 = 100 %): shown in percent.
  plot("chart-cohorts", cohorts.rows.length ? [{
    type: "heatmap", z, x: [...Array(width).keys()], y: months, text, zmin: 0, zmax: 1,
    colorscale: [[0, "#f4f7fe"], [0.35, "#9db5f5"], [1, "#1d3fa8"]],
    hovertemplate: "cohort %{y}, month %{x}: %{z:.1%}<br>%{text}<extra></extra>",
    colorbar: { title: { text: "%" }, thickness: 12, tickformat: ".0%" },
  }] : [], {
    hovermode: "closest",
    xaxis: { ...LAYOUT.xaxis, title: { text: "months since signup" }, dtick: 1 },
    yaxis: { ...LAYOUT.yaxis, autorange: "reversed", type: "category" },
  });
}

function renderTournaments(series) {
  const x = series.rows.map((r) => r.period_start);
  plot("chart-tournaments", series.rows.length ? [
    { x, y: series.rows.map((r) => r.tournament_count), name: "Tournaments", type: "bar", marker: { color: COLORS.bars } },
    // completion_rate is a fraction (1 = 100 %): its axis and hover read in percent.
    { x, y: series.rows.map((r) => r.completion_rate), name: "Completion rate (%)", type: "scatter", mode: "lines+markers", yaxis: "y2", line: { color: COLORS.line, width: 2 }, hovertemplate: "%{y:.1%}" },
  ] : [], {
    yaxis2: { overlaying: "y", side: "right", range: [0, 1.05], dtick: 0.25, showgrid: false, tickformat: ".0%" },
    margin: { ...LAYOUT.margin, r: 48 },
  });
  const counts = {};
  for (const r of series.rows) {
    if (r.most_popular_format) counts[r.most_popular_format] = (counts[r.most_popular_format] || 0) + 1;
  }
  const formats = Object.keys(counts).sort((a, b) => counts[b] - counts[a]);
  plot("chart-formats", formats.length ? [{
    type: "pie", hole: 0.55, labels: formats.map(plotlyText), values: formats.map((f) => counts[f]), sort: false,
    marker: { colors: ["#3056d3", "#23a98a", "#f0a04b", "#8a63d2", "#d64545", "#5bc0de"] },
    textinfo: "label+percent", insidetextorientation: "horizontal",
  }] : [], { hovermode: "closest", showlegend: false, margin: { l: 20, r: 20, t: 10, b: 10 } });
}

function renderReports(reports) {
  if (!reports.reports.length) {
    $("reports").replaceChildren(el("div", "empty", "No scheduled reports"));
    return;
  }
  const when = (iso) => iso.slice(0, 16).replace("T", " ");
  const header = ["Report", "Type", "Frequency", "State", "Next run (UTC)", "Last delivery"];
  const rows = reports.reports.map((r) => {
    const last = r.deliveries[0];
    const status = last ? [el("span", `badge ${last.status}`, last.status), " " + when(last.scheduled_for)] : ["none yet"];
    const cells = [r.name, r.report_type.replace("_", " "), r.frequency, r.is_active ? "active" : "paused", when(r.next_run_at)];
    return el("tr", "", ...cells.map((text) => el("td", "", text)), el("td", "", ...status));
  });
  $("reports").replaceChildren(el("table", "",
    el("thead", "", el("tr", "", ...header.map((text) => el("th", "", text)))),
    el("tbody", "", ...rows)));
}

// The freshness of the oldest of an aggregate's responses: what the page shows of it is at least
// that recent. One never computed makes it unknown.
function oldestFreshness(...bodies) {
  if (bodies.some((b) => !b.data_updated_at)) return { updated_at: null, stale_after: null };
  const oldest = bodies.reduce((a, b) => (b.data_updated_at < a.data_updated_at ? b : a));
  return { updated_at: oldest.data_updated_at, stale_after: oldest.data_stale_after };
}

function ago(seconds) {
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours >= 48) return `${Math.floor(hours / 24)} days ago`;
  return minutes % 60 ? `${hours} h ${minutes % 60} min ago` : `${hours} h ago`;
}

function renderFreshness() {
  const now = Date.now();
  const items = [];
  for (const [aggregate, label] of FRESHNESS_LABELS) {
    const f = freshness[aggregate];
    if (!f) continue;
    const item = document.createElement("span");
    item.dataset.aggregate = aggregate;
    if (!f.updated_at) {
      item.textContent = `${label}: not computed yet`;
    } else {
      const seconds = Math.max(0, Math.floor((now - Date.parse(f.updated_at)) / 1000));
      const stale = now >= Date.parse(f.stale_after);
      item.textContent = `${label} updated ${ago(seconds)}`;
      item.title = `Computed at ${f.updated_at.slice(0, 19).replace("T", " ")} UTC`;
      item.dataset.stale = String(stale);
      if (stale) {
        const badge = document.createElement("span");
        badge.className = "badge stale";
        badge.textContent = "stale";
        badge.title = `Older than promised: due to be recomputed by ${f.stale_after.slice(0, 19).replace("T", " ")} UTC; the figures may be behind`;
        item.appendChild(badge);
      }
    }
    items.push(item);
  }
  $("freshness").replaceChildren(...items);
}

async function load() {
  if (!token()) {
    showSignIn("Paste the access token for your organization to see its numbers.");
    return;
  }
  showDashboard();
  document.body.dataset.state = "loading";
  $("status").className = "status";
  $("status").textContent = "Loading…";
  const { period_type, from, to, compare, segment } = range();
  const bridgeTo = minDay(to, todayUtc());
  // Up to the last 24 cohorts of the range.
  const cohortRange = {
    from: monthsBefore(to, 24).slice(0, 7) > from.slice(0, 7) ? monthsBefore(to, 24).slice(0, 7) : from.slice(0, 7),
    to: to.slice(0, 7),
  };
  const cohortSegment = COHORT_SEGMENTS[segment] ? segment : "";
  try {
    const [kpis, series, bridge, months, cohorts, tournaments, reports] = await Promise.all([
      api("/v1/kpis", { period_type, day: to, compare }),
      api("/v1/revenue", { period_type, from, to }),
      api("/v1/revenue/bridge", { from: minDay(from, bridgeTo), to: bridgeTo }),
      api("/v1/revenue", { period_type: "month", from, to }),
      api("/v1/cohorts", cohortRange),
      api("/v1/tournaments", { period_type, from, to }),
      api("/v1/reports", {}),
    ]);
    // By segment: the same ranges from revenue_segments, drawn instead of the two revenue charts,
    // each value's key figures, and the cohorts of one value at a time.
    const [segments, segmentMonths, segmentKpis, byCohortSegment] = segment ? await Promise.all([
      api("/v1/revenue/segments", { segment, period_type, from, to }),
      api("/v1/revenue/segments", { segment, period_type: "month", from, to }),
      api("/v1/kpis/segments", { segment, period_type, day: to, compare }),
      cohortSegment ? api("/v1/cohorts/segments", { segment: cohortSegment, ...cohortRange }) : null,
    ]) : [null, null, null, null];
    $("tenant-label").textContent = `Organization ${kpis.tenant_id}`;
    $("currency").textContent = `Amounts in ${kpis.currency}`;
    renderTiles(kpis);
    if (segments) {
      renderSegmentedRevenue(segments);
      renderSegmentedMovements(segmentMonths, segments);
    } else {
      renderRevenue(series);
      renderMovements(months);
      delete $("chart-mrr").dataset.segment;
    }
    renderBridge(bridge);
    $("segment-kpis-panel").hidden = !segmentKpis;
    if (segmentKpis) renderSegmentKpis(segmentKpis);
    cohortSegments = byCohortSegment;
    $("cohorts-note").hidden = !(segment && !cohortSegment);
    $("cohorts-note").textContent = "Cohorts are split by first plan or signup source, not by billing interval: all users shown.";
    if (byCohortSegment) {
      renderCohortSegments(byCohortSegment);
    } else {
      $("cohort-value-picker").hidden = true;
      $("cohorts-title").textContent = "Cohort retention (% of cohort active)";
      delete $("chart-cohorts").dataset.segment;
      delete $("chart-cohorts").dataset.value;
      renderCohorts(cohorts);
    }
    renderTournaments(tournaments);
    renderReports(reports);
    freshness = {
      revenue_aggregates: oldestFreshness(kpis, series, bridge, months),
      ...(segments ? { revenue_segments: oldestFreshness(segments, segmentMonths, segmentKpis) } : {}),
      tournament_aggregates: oldestFreshness(tournaments),
      user_cohorts: oldestFreshness(cohorts),
      ...(byCohortSegment ? { user_cohort_segments: oldestFreshness(byCohortSegment) } : {}),
    };
    renderFreshness();
    $("status").textContent = `${period_type[0].toUpperCase() + period_type.slice(1)} figures, ${from} to ${to}. Tiles: ${kpis.label}.`;
    renders += 1;
    document.body.dataset.renders = String(renders);
    document.body.dataset.state = "ready";
  } catch (error) {
    if (error instanceof SignInNeeded) {
      sessionStorage.removeItem(TOKEN_KEY);
      const expired = /expired/.test(error.message);
      showSignIn(expired ? "Your session has expired. Sign in again with a new token." : `Please sign in: ${error.message}.`);
      return;
    }
    $("status").className = "status error";
    $("status").textContent = `Could not load the figures: ${error.message}`;
    document.body.dataset.state = "error";
  }
}

function setRange(months) {
  const to = $("date-to").value || todayUtc();
  $("date-from").value = monthsBefore(to, months);
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  $("date-to").value = todayUtc();
  $("date-from").value = monthsBefore(todayUtc(), 12);
  for (const id of ["period-type", "segment", "compare", "date-from", "date-to"]) $(id).addEventListener("change", load);
  // Another value's heatmap from the triangle already read.
  $("cohort-value").addEventListener("change", () => {
    if (cohortSegments) renderCohortValue(cohortSegments, $("cohort-value").value);
  });
  for (const button of document.querySelectorAll(".presets button")) {
    button.addEventListener("click", () => setRange(Number(button.dataset.months)));
  }
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value) {
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token-input").value = "";
      load();
    }
  });
  setInterval(renderFreshness, FRESHNESS_REDRAW_MS);
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn("Signed out. Paste a token to sign in again.");
  });
  load();
});
