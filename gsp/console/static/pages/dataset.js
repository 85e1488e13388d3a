// Dataset: one dataset's quality from GET /api/quality/{dataset}: its four scores with their trend, a heat map of each
// field's score on each dimension (classes heat-0 .. heat-10 in style.css: the CSP allows no inline style), the rules
// that fired most, and links to its quarantine (#/quarantine?dataset=<name>, the quarantine page reads the filter).
import { DIMENSIONS, freshness, openCount, percent, scoreBox } from "./overview.js";

export const id = "dataset";
export const path = "/dataset/:name";
export const title = "nav_dataset";
export const menu = false;
export const roles = ["steward", "ops", "owner", "admin"];

export const strings = {
  en: {
    nav_dataset: "Dataset",
    dataset_back: "← All datasets",
    dataset_records: "{n} records in the latest snapshot",
    dataset_heat: "Score by field and dimension",
    dataset_heat_help: "Each cell: the share of checks the field passed on that dimension. \"record\" is the whole record (duplicates, quarantine); \"delivery\" is how fast shared records reached subscribers. An empty cell was not measured.",
    dataset_field: "Field", dataset_checks: "{failures} of {checks} checks failed",
    dataset_no_cells: "Nothing measured yet.",
    dataset_rules: "Rules that fired most",
    dataset_rule: "Rule", dataset_rule_field: "Field", dataset_count: "Records", dataset_severity: "Severity",
    dataset_open: "Open in quarantine", dataset_no_rules: "No rule has fired.",
    dataset_severity_reject: "reject", dataset_severity_warn: "warn", dataset_severity_fix: "fix",
    dataset_quarantine_link: "Open the quarantine of this dataset",
    dataset_any_field: "(record)",
  },
  vi: {
    nav_dataset: "Tập dữ liệu",
    dataset_back: "← Tất cả tập dữ liệu",
    dataset_records: "{n} bản ghi trong lần chấm gần nhất",
    dataset_heat: "Điểm theo trường và tiêu chí",
    dataset_heat_help: "Mỗi ô: tỷ lệ lượt kiểm tra mà trường đạt theo tiêu chí đó. \"record\" là cả bản ghi (trùng lặp, cách ly); \"delivery\" là tốc độ bản ghi chia sẻ đến bên đăng ký. Ô trống là chưa được đo.",
    dataset_field: "Trường", dataset_checks: "{failures} trên {checks} lượt kiểm tra không đạt",
    dataset_no_cells: "Chưa đo được gì.",
    dataset_rules: "Các quy tắc vi phạm nhiều nhất",
    dataset_rule: "Quy tắc", dataset_rule_field: "Trường", dataset_count: "Số bản ghi", dataset_severity: "Mức độ",
    dataset_open: "Đang cách ly", dataset_no_rules: "Chưa có quy tắc nào bị vi phạm.",
    dataset_severity_reject: "loại bỏ", dataset_severity_warn: "cảnh báo", dataset_severity_fix: "tự sửa",
    dataset_quarantine_link: "Mở hàng đợi cách ly của tập dữ liệu này",
    dataset_any_field: "(bản ghi)",
  },
};

// heat-0 (under 10 %) .. heat-10 (100 %): one shade per tenth.
export function heatClass(score) {
  if (score === null || score === undefined) return "heat-none";
  return `heat-${Math.max(0, Math.min(10, Math.floor(score * 10 + 1e-9)))}`;
}

function heatMap(h, t, matrix) {
  if (!matrix.fields.length) return h("p", { class: "muted", id: "heatmap-empty" }, t("dataset_no_cells"));
  return h("table", { class: "heat", id: "heatmap" },
    h("thead", {}, h("tr", {}, h("th", {}, t("dataset_field")),
      matrix.dimensions.map((d) => h("th", { class: "cell" }, t(`overview_${d}`))))),
    h("tbody", {}, matrix.fields.map((row) => h("tr", { "data-id": row.field },
      h("th", { scope: "row" }, h("code", {}, row.field)),
      matrix.dimensions.map((d) => {
        const cell = row.cells[d];
        if (!cell) return h("td", { class: "cell heat-none", "data-dimension": d }, "");
        return h("td", { class: `cell ${heatClass(cell.score)}`, "data-dimension": d,
          title: t("dataset_checks", { failures: cell.failures, checks: cell.checks }) }, percent(cell.score));
      })))));
}

function worstRules(h, t, name, rules, steward) {
  if (!rules.length) return h("p", { class: "muted", id: "worst-rules-empty" }, t("dataset_no_rules"));
  return h("table", { id: "worst-rules" },
    h("thead", {}, h("tr", {}, ["dataset_rule", "dataset_rule_field", "dataset_count", "dataset_severity", "dataset_open"]
      .map((k) => h("th", { class: k === "dataset_count" || k === "dataset_open" ? "num" : null }, t(k))))),
    h("tbody", {}, rules.map((r) => h("tr", { "data-id": r.rule },
      h("td", {}, h("code", {}, r.rule)),
      h("td", {}, r.field ? h("code", {}, r.field) : h("span", { class: "muted" }, t("dataset_any_field"))),
      h("td", { class: "num" }, new Intl.NumberFormat(document.documentElement.lang).format(r.count)),
      h("td", {}, r.severity ? h("span", { class: `pill severity-${r.severity}` }, t(`dataset_severity_${r.severity}`)) : "—"),
      h("td", { class: "num" }, r.open && steward
        ? h("a", { href: `#/quarantine?dataset=${encodeURIComponent(name)}&rule=${encodeURIComponent(r.rule)}`, "data-action": "quarantine-rule" }, r.open)
        : String(r.open))))));
}

export async function render(root, { api, h, t, hasRole }, params) {
  const name = params.name;
  const card = await api("GET", `/api/quality/${encodeURIComponent(name)}`);
  const steward = hasRole("steward");
  const quarantine = `#/quarantine?dataset=${encodeURIComponent(name)}`;
  root.append(
    h("p", {}, h("a", { href: "#/overview", id: "dataset-back" }, t("dataset_back"))),
    h("h1", {}, card.dataset),
    h("p", { class: "muted" }, t("dataset_records", { n: new Intl.NumberFormat(document.documentElement.lang).format(card.records) })),
    h("div", { class: "dataset-top" },
      h("div", { class: "card" }, h("div", { class: "scores", id: "dataset-scores" }, DIMENSIONS.map((d) => scoreBox(h, t, card, d)))),
      h("div", { class: "card" },
        h("dl", { class: "open-items" },
          h("dt", {}, t("overview_quarantine")),
          h("dd", {}, openCount(h, t, card.quarantine, steward ? quarantine : null, "quarantine")),
          h("dt", {}, t("overview_review")),
          h("dd", {}, openCount(h, t, card.review, steward ? `#/review?dataset=${encodeURIComponent(name)}` : null, "review"))),
        freshness(h, t, card),
        steward ? h("p", {}, h("a", { href: quarantine, id: "dataset-quarantine", "data-action": "quarantine" }, t("dataset_quarantine_link"))) : null)),
    h("section", { class: "card" },
      h("h2", {}, t("dataset_heat")), h("p", { class: "muted" }, t("dataset_heat_help")), heatMap(h, t, card.matrix)),
    h("section", { class: "card" }, h("h2", {}, t("dataset_rules")), worstRules(h, t, card.dataset, card.worst_rules, steward)));
}
