// Overview: every dataset's quality scorecard ("đúng, đủ, sạch, sống") from GET /api/quality: the four scores with
// a sparkline of their trend, the open quarantine and review items, freshness. A card opens #/dataset/<name>.
// Score colours (shared with the dataset page): ok at 95 % and above, warn from 80 % to under 95 %, bad under 80 %.
export const id = "overview";
export const path = "/overview";
export const title = "nav_overview";
export const menu = true;
export const roles = ["steward", "ops", "owner", "admin"];

export const DIMENSIONS = ["correct", "complete", "clean", "live"];
export const THRESHOLDS = { ok: 0.95, warn: 0.8 };
const SVG = "http://www.w3.org/2000/svg";

export const strings = {
  en: {
    nav_overview: "Overview",
    overview_title: "Data quality",
    overview_legend: "Scores of the latest snapshot: green from 95 %, amber from 80 %, red below 80 %. The line shows the last snapshots, oldest on the left.",
    overview_correct: "Correct", overview_complete: "Complete", overview_clean: "Clean", overview_live: "Live",
    overview_records: "{n} records",
    overview_quarantine: "Quarantine", overview_review: "Review", overview_open: "{n} open",
    overview_last_seen: "Last record", overview_scored: "Scored", overview_declared: "Expected",
    overview_declared_value: "updated within {days} days, shared within {seconds} s",
    overview_never: "never", overview_stale: "older than the declared freshness",
    overview_not_scored: "Not scored yet: no record has passed the pipeline.",
    overview_details: "Details", overview_empty: "No dataset is declared.",
    overview_trend: "{dimension}: {from} → {to} over {n} snapshots",
  },
  vi: {
    nav_overview: "Tổng quan",
    overview_title: "Chất lượng dữ liệu",
    overview_legend: "Điểm của lần chấm gần nhất: xanh từ 95 %, vàng từ 80 %, đỏ dưới 80 %. Đường biểu diễn các lần chấm gần đây, cũ nhất ở bên trái.",
    overview_correct: "Đúng", overview_complete: "Đủ", overview_clean: "Sạch", overview_live: "Sống",
    overview_records: "{n} bản ghi",
    overview_quarantine: "Cách ly", overview_review: "Chờ rà soát", overview_open: "{n} đang mở",
    overview_last_seen: "Bản ghi mới nhất", overview_scored: "Chấm điểm", overview_declared: "Yêu cầu",
    overview_declared_value: "cập nhật trong {days} ngày, chia sẻ trong {seconds} giây",
    overview_never: "chưa có", overview_stale: "cũ hơn thời hạn cập nhật đã khai báo",
    overview_not_scored: "Chưa được chấm điểm: chưa có bản ghi nào qua luồng xử lý.",
    overview_details: "Chi tiết", overview_empty: "Chưa khai báo tập dữ liệu nào.",
    overview_trend: "{dimension}: {from} → {to} qua {n} lần chấm",
  },
};

function locale() { return document.documentElement.lang === "en" ? "en-GB" : "vi-VN"; }

// "97,3 %" / "97.3%"; "—" when the dimension measured nothing.
export function percent(score) {
  if (score === null || score === undefined) return "—";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(score);
}

export function scoreClass(score) {
  if (score === null || score === undefined) return "muted";
  return score >= THRESHOLDS.ok ? "ok" : score >= THRESHOLDS.warn ? "warn" : "bad";
}

export function when(ms) {
  if (ms === null || ms === undefined) return null;
  return new Date(ms).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" });
}

// "3 minutes ago", by the largest unit that fits.
export function ago(ms) {
  const seconds = Math.round((ms - Date.now()) / 1000);
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: "auto" });
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(seconds, "second");
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

// An inline sparkline of one dimension's scores, oldest first; a gap where a snapshot measured nothing. The vertical
// scale spans the values shown (at least 2 points of percentage), so a small drop near 100 % still shows.
export function sparkline(values, { label, cls, width = 96, height = 22 }) {
  const chart = svg("svg", { class: `spark ${cls}`, viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": label });
  const title = svg("title", {});
  title.textContent = label;
  chart.append(title);
  const known = values.filter((v) => v !== null && v !== undefined);
  if (!known.length) return chart;
  let lo = Math.min(...known), hi = Math.max(...known);
  if (hi - lo < 0.02) { const mid = (hi + lo) / 2; lo = mid - 0.01; hi = mid + 0.01; }
  const pad = 2;
  const x = (i) => values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1);
  const y = (v) => pad + ((hi - v) * (height - 2 * pad)) / (hi - lo);
  let run = [];
  const flush = () => {
    if (run.length > 1) chart.append(svg("polyline", { points: run.join(" "), class: "spark-line" }));
    run = [];
  };
  values.forEach((v, i) => {
    if (v === null || v === undefined) { flush(); return; }
    run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  flush();
  const last = values.length - 1;
  if (values[last] !== null && values[last] !== undefined) {
    chart.append(svg("circle", { cx: x(last).toFixed(1), cy: y(values[last]).toFixed(1), r: 2, class: "spark-dot" }));
  }
  return chart;
}

export function scoreBox(h, t, card, dimension) {
  const score = card.scores[dimension];
  const values = card.trend.map((point) => point.scores[dimension]);
  const known = values.filter((v) => v !== null && v !== undefined);
  const label = known.length
    ? t("overview_trend", { dimension: t(`overview_${dimension}`), from: percent(known[0]), to: percent(known[known.length - 1]), n: values.length })
    : t(`overview_${dimension}`);
  return h("div", { class: "score-box", "data-dimension": dimension },
    h("div", { class: "muted" }, t(`overview_${dimension}`)),
    h("div", { class: `score ${scoreClass(score)}` }, percent(score)),
    sparkline(values, { label, cls: scoreClass(score) }));
}

// Freshness: when the record count last grew, when it was last scored, and what the dataset declares.
export function freshness(h, t, card) {
  const f = card.freshness;
  const stale = f.last_seen_at !== null && f.freshness_days !== null && Date.now() - f.last_seen_at > f.freshness_days * 86400000;
  const rows = [
    [t("overview_last_seen"), f.last_seen_at === null ? t("overview_never")
      : h("span", { class: stale ? "bad" : null, title: when(f.last_seen_at) }, ago(f.last_seen_at), stale ? ` (${t("overview_stale")})` : "")],
    [t("overview_scored"), f.snapshot_at === null ? t("overview_never") : h("span", { title: when(f.snapshot_at) }, ago(f.snapshot_at))],
  ];
  if (f.freshness_days !== null) {
    rows.push([t("overview_declared"), t("overview_declared_value", {
      days: new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(f.freshness_days), seconds: f.delivery_s })]);
  }
  return h("dl", { class: "freshness" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

export function openCount(h, t, n, href, action) {
  if (n === null || n === undefined) return h("span", { class: "muted" }, "—");
  const text = t("overview_open", { n });
  if (!n) return h("span", { class: "muted", "data-action": action }, text);
  return href ? h("a", { href, "data-action": action, class: "warn" }, text) : h("span", { class: "warn", "data-action": action }, text);
}

function datasetCard(h, t, card, hasRole) {
  const name = encodeURIComponent(card.dataset);
  const scored = card.trend.length > 0;
  return h("article", { class: "card quality-card", "data-id": card.dataset },
    h("header", { class: "quality-head" },
      h("h2", {}, h("a", { href: `#/dataset/${name}`, "data-action": "open-dataset" }, card.dataset)),
      h("span", { class: "muted" }, t("overview_records", { n: new Intl.NumberFormat(locale()).format(card.records) }))),
    scored ? h("div", { class: "scores" }, DIMENSIONS.map((d) => scoreBox(h, t, card, d)))
      : h("p", { class: "muted not-scored" }, t("overview_not_scored")),
    h("dl", { class: "open-items" },
      h("dt", {}, t("overview_quarantine")),
      h("dd", {}, openCount(h, t, card.quarantine, hasRole("steward") ? `#/quarantine?dataset=${name}` : null, "quarantine")),
      h("dt", {}, t("overview_review")),
      h("dd", {}, openCount(h, t, card.review, hasRole("steward") ? `#/review?dataset=${name}` : null, "review"))),
    freshness(h, t, card),
    h("p", { class: "quality-more" }, h("a", { href: `#/dataset/${name}` }, `${t("overview_details")} →`)));
}

export async function render(root, { api, h, t, hasRole }) {
  const cards = await api("GET", "/api/quality");
  root.append(h("h1", {}, t("overview_title")), h("p", { class: "muted", id: "overview-legend" }, t("overview_legend")));
  if (!cards.length) { root.append(h("p", { class: "muted" }, t("overview_empty"))); return; }
  root.append(h("div", { class: "grid", id: "quality-cards" }, cards.map((card) => datasetCard(h, t, card, hasRole))));
}
