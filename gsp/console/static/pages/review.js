// Review: the pairs the matcher proposed, each beside the registry entry, field by field as the matcher compared them,
// for a steward to accept (the record is delivered as MATCHED) or reject with a reason. Keyboard for a long queue:
// j/k next/previous, a accept, r reject (focus the reason), ? the shortcuts; never while typing in a field.
// Filters in the hash query: #/review?dataset=telecom.subscriber&status=open&item=<item id>.
export const id = "review";
export const path = "/review";
export const title = "nav_review";
export const menu = true;
export const roles = ["steward"];

export const strings = {
  en: {
    nav_review: "Review",
    review_title: "Match review",
    review_intro: "Pairs the matcher found likely but not certain. Compare the record with the registry entry and decide.",
    review_dataset: "Dataset", review_status: "Status", review_any: "any", review_filter: "Filter",
    review_open: "open", review_accepted: "accepted", review_rejected: "rejected", review_all: "all",
    review_received: "Received", review_record: "Record", review_proposed: "Proposed person", review_probability: "Probability",
    review_shown: "{n} shown", review_open_total: "{n} open in total",
    review_empty: "No proposed match is waiting here.", review_pick: "Select a pair in the queue to compare it.",
    review_pair: "{key} ↔ {pid}", review_score: "match weight {score}",
    review_verdict_POSSIBLE: "possible match (found by search)", review_verdict_MISMATCH: "mismatch on the record's own id",
    review_field: "Field", review_registry: "Registry ({dataset})", review_agreement: "Agreement as the matcher saw it",
    review_other: "other comparisons", review_no_level: "not compared",
    review_registry_missing: "Registry entry unavailable: {error}",
    review_agreeing: "Agreeing", review_disagreeing: "Disagreeing", review_full_record: "The whole record",
    review_reason: "Reason", review_reason_placeholder: "Why (required to reject)",
    review_accept: "Accept", review_reject: "Reject",
    review_reason_required: "A reason is required to reject.",
    review_accepted_toast: "Accepted: delivered as {verdict}", review_rejected_toast: "Rejected: {verdict}",
    review_decided: "{status} by {who}", review_decided_reason: "Reason: {reason}",
    review_keys: "Keyboard shortcuts", review_keys_hint: "Press ? for keyboard shortcuts",
    review_key_next: "next pair", review_key_prev: "previous pair", review_key_accept: "accept the pair",
    review_key_reject: "reject: type the reason, then Enter", review_key_help: "show or hide this list",
    review_key_escape: "leave the reason field, close this list",
  },
  vi: {
    nav_review: "Rà soát",
    review_title: "Rà soát ghép nối",
    review_intro: "Các cặp mà bộ ghép nối thấy có khả năng nhưng chưa chắc chắn. So sánh bản ghi với mục trong sổ đăng ký rồi quyết định.",
    review_dataset: "Tập dữ liệu", review_status: "Trạng thái", review_any: "tất cả", review_filter: "Lọc",
    review_open: "đang chờ", review_accepted: "đã chấp nhận", review_rejected: "đã từ chối", review_all: "tất cả",
    review_received: "Nhận lúc", review_record: "Bản ghi", review_proposed: "Người được đề xuất", review_probability: "Xác suất",
    review_shown: "Hiển thị {n}", review_open_total: "Tổng cộng {n} cặp đang chờ",
    review_empty: "Không có cặp đề xuất nào đang chờ.", review_pick: "Chọn một cặp trong hàng đợi để so sánh.",
    review_pair: "{key} ↔ {pid}", review_score: "trọng số ghép {score}",
    review_verdict_POSSIBLE: "có thể trùng khớp (tìm bằng tìm kiếm)", review_verdict_MISMATCH: "không khớp với số định danh của bản ghi",
    review_field: "Trường", review_registry: "Sổ đăng ký ({dataset})", review_agreement: "Mức khớp theo bộ ghép nối",
    review_other: "so sánh khác", review_no_level: "không so sánh",
    review_registry_missing: "Không có mục trong sổ đăng ký: {error}",
    review_agreeing: "Khớp", review_disagreeing: "Không khớp", review_full_record: "Toàn bộ bản ghi",
    review_reason: "Lý do", review_reason_placeholder: "Lý do (bắt buộc khi từ chối)",
    review_accept: "Chấp nhận", review_reject: "Từ chối",
    review_reason_required: "Cần nhập lý do để từ chối.",
    review_accepted_toast: "Đã chấp nhận: chuyển giao với kết quả {verdict}", review_rejected_toast: "Đã từ chối: {verdict}",
    review_decided: "{status} bởi {who}", review_decided_reason: "Lý do: {reason}",
    review_keys: "Phím tắt", review_keys_hint: "Nhấn ? để xem phím tắt",
    review_key_next: "cặp tiếp theo", review_key_prev: "cặp trước", review_key_accept: "chấp nhận cặp",
    review_key_reject: "từ chối: nhập lý do rồi nhấn Enter", review_key_help: "hiện hoặc ẩn danh sách này",
    review_key_escape: "rời ô lý do, đóng danh sách này",
  },
};

const STATUSES = ["open", "accepted", "rejected", "all"];
const REGISTRY = "population.citizen";
let keyHandler = null;  // the rendered page's; replaced when the page renders again

function when(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "vi-VN");
}

function percent(p) {
  return p === null || p === undefined ? "—" : `${(p * 100).toFixed(1)}%`;
}

function shown(value) {
  if (value === null || value === undefined || value === "") return "∅";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function levelClass(level) {
  if (level === "exact") return "lv-exact";
  if (level === "else") return "lv-else";
  if (level === "null") return "lv-null";
  return "lv-near";
}

function typing(target) {
  return !!(target && target.closest && target.closest("input, textarea, select, [contenteditable]"));
}

export async function render(root, ctx, params = {}) {
  const { api, h, t, toast, navigate } = ctx;
  const filters = { dataset: params.dataset || "", status: STATUSES.includes(params.status) ? params.status : "open" };
  const query = new URLSearchParams({ status: filters.status, limit: "200" });
  if (filters.dataset) query.set("dataset", filters.dataset);
  const [counts, items] = await Promise.all([api("GET", "/api/review/counts"), api("GET", `/api/review?${query}`)]);
  let queue = items;

  const option = (value, label, current) => h("option", { value, selected: value === current }, label);
  const datasets = [...new Set([...Object.keys(counts), ...(filters.dataset ? [filters.dataset] : [])])].sort();
  const datasetSelect = h("select", { id: "review-filter-dataset" },
    option("", t("review_any"), filters.dataset), datasets.map((d) => option(d, d, filters.dataset)));
  const statusSelect = h("select", { id: "review-filter-status" },
    STATUSES.map((s) => option(s, t(`review_${s}`), filters.status)));
  const go = () => {
    const q = new URLSearchParams();
    if (datasetSelect.value) q.set("dataset", datasetSelect.value);
    if (statusSelect.value !== "open") q.set("status", statusSelect.value);
    navigate(`/review${q.size ? `?${q}` : ""}`);
  };
  datasetSelect.addEventListener("change", go);
  statusSelect.addEventListener("change", go);
  const openTotal = Object.values(counts).reduce((a, b) => a + b, 0);

  const shortcuts = h("div", { class: "card shortcuts", id: "review-shortcuts", hidden: true, role: "dialog",
    "aria-label": t("review_keys") },
  h("h3", {}, t("review_keys")),
  h("dl", {}, [["j", "review_key_next"], ["k", "review_key_prev"], ["a", "review_key_accept"], ["r", "review_key_reject"],
    ["?", "review_key_help"], ["Esc", "review_key_escape"]].map(([key, text]) => [h("dt", {}, h("kbd", {}, key)), h("dd", {}, t(text))])));
  const hint = h("button", { type: "button", class: "link muted", id: "review-keys-hint",
    onclick: () => { shortcuts.hidden = !shortcuts.hidden; } }, t("review_keys_hint"));

  const tbody = h("tbody", {});
  const summary = h("p", { class: "muted", id: "review-summary" });
  const detail = h("div", { class: "card review-detail", id: "review-detail" }, h("p", { class: "muted" }, t("review_pick")));
  const rows = new Map();
  let selected = null;
  let current = null;  // the selected item's detail, once loaded
  let controls = null;  // {reason, accept, reject, error} of the selected open item

  function statusPill(status) {
    return h("span", { class: `pill status-${status}` }, t(`review_${status}`));
  }

  function fill() {
    rows.clear();
    summary.textContent = `${t("review_shown", { n: queue.length })} · ${t("review_open_total", { n: openTotal })}`;
    if (!queue.length) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: 3, class: "muted", id: "review-empty" }, t("review_empty"))));
      return;
    }
    tbody.replaceChildren(...queue.map((item) => {
      const row = h("tr", { dataset: { id: item.item_id }, class: item.item_id === selected ? "selected" : null },
        h("td", {}, h("div", {}, item.source_key), h("div", { class: "muted small" }, item.dataset)),
        h("td", {}, h("div", {}, h("code", {}, item.personal_id)),
          item.status === "open" ? h("span", { class: `pill ${item.verdict}` }, item.verdict) : statusPill(item.status)),
        h("td", { class: "num" }, percent(item.probability)));
      row.addEventListener("click", () => select(item.item_id));
      rows.set(item.item_id, row);
      return row;
    }));
  }

  async function select(itemId) {
    selected = itemId;
    current = null;
    controls = null;
    for (const [rid, row] of rows) {
      row.classList.toggle("selected", rid === itemId);
      if (rid === itemId) row.scrollIntoView({ block: "nearest" });
    }
    if (itemId === null) { detail.replaceChildren(h("p", { class: "muted" }, t("review_pick"))); return; }
    detail.replaceChildren(h("p", { class: "muted" }, t("loading")));
    try {
      const item = await api("GET", `/api/review/${encodeURIComponent(itemId)}`);
      if (selected !== itemId) return;
      current = item;
      detail.replaceChildren(...itemView(item));
    } catch (err) {
      if (selected === itemId) detail.replaceChildren(h("p", { class: "error" }, err.message));
    }
  }

  function comparison(item) {
    const table = h("table", { class: "compare", id: "review-compare" },
      h("thead", {}, h("tr", {}, h("th", {}, t("review_field")), h("th", {}, `${t("review_record")} (${item.dataset})`),
        h("th", {}, t("review_registry", { dataset: REGISTRY })), h("th", {}, t("review_agreement")))));
    const body = h("tbody", {});
    for (const row of item.fields || []) {
      const levels = Object.entries(row.levels || {});
      const disagree = levels.some(([, level]) => level === "else");
      body.append(h("tr", { class: disagree ? "disagree" : null, dataset: { field: row.field || "other" } },
        h("th", { scope: "row" }, row.field ?? t("review_other")),
        h("td", { class: "record-value" }, row.field ? shown(row.record) : ""),
        h("td", { class: "registry-value" }, row.field ? shown(row.registry) : ""),
        h("td", { class: "levels" }, levels.length
          ? levels.map(([name, level]) => h("span", { class: `level ${levelClass(level)}`, title: name }, `${name}: ${level}`))
          : h("span", { class: "muted small" }, t("review_no_level")))));
    }
    table.append(body);
    return table;
  }

  function itemView(item) {
    const head = h("div", { class: "review-head" },
      h("div", {},
        h("h2", {}, t("review_pair", { key: item.source_key, pid: item.personal_id })),
        h("p", { class: "muted small" }, `${item.dataset} · ${t(`review_verdict_${item.verdict}`)} · `,
          t("review_score", { score: Number(item.score).toFixed(2) }), ` · ${when(item.received_at)}`)),
      h("div", { class: "probability", id: "review-probability", title: t("review_probability") },
        h("div", { class: "score" }, percent(item.probability)), h("div", { class: "muted small" }, t("review_probability"))));
    const parts = [head];
    if (item.registry_error) parts.push(h("p", { class: "warn small", id: "review-registry-error" },
      t("review_registry_missing", { error: item.registry_error })));
    parts.push(comparison(item));
    const chips = (names, cls) => names.map((n) => h("span", { class: `level ${cls}` }, n));
    if ((item.agreeing_fields || []).length || (item.disagreeing_fields || []).length) {
      parts.push(h("p", { class: "small fieldsum" },
        h("span", { class: "muted" }, `${t("review_agreeing")}: `), chips(item.agreeing_fields || [], "lv-exact"), " ",
        h("span", { class: "muted" }, `${t("review_disagreeing")}: `), chips(item.disagreeing_fields || [], "lv-else")));
    }
    if (item.status === "open") parts.push(decisionForm(item));
    else {
      parts.push(h("div", { class: "decided", id: "review-decided" }, statusPill(item.status), " ",
        h("span", { class: "actor" }, t("review_decided", { status: t(`review_${item.status}`), who: item.decided_by })),
        h("span", { class: "muted" }, ` · ${when(item.decided_at)}`),
        item.reason ? h("div", {}, t("review_decided_reason", { reason: item.reason })) : null));
    }
    const record = item.record || {};
    parts.push(h("details", { class: "full-record" }, h("summary", {}, t("review_full_record")),
      h("pre", {}, JSON.stringify(record.value, null, 2))));
    return parts;
  }

  function decisionForm(item) {
    const reason = h("input", { id: "review-reason", name: "reason", size: 40, autocomplete: "off",
      placeholder: t("review_reason_placeholder"), "aria-label": t("review_reason") });
    const accept = h("button", { type: "button", class: "primary", id: "review-accept", "data-action": "accept" },
      t("review_accept"), " ", h("kbd", {}, "a"));
    const reject = h("button", { type: "submit", id: "review-reject", "data-action": "reject" }, t("review_reject"), " ", h("kbd", {}, "r"));
    const error = h("p", { class: "error", id: "review-error", role: "alert" });
    const form = h("form", { class: "decision", id: "review-decision", novalidate: true },
      h("label", {}, t("review_reason"), reason), h("div", { class: "buttons" }, accept, reject), error);
    form.addEventListener("submit", (event) => { event.preventDefault(); decide(item, "reject"); });
    accept.addEventListener("click", () => decide(item, "accept"));
    controls = { reason, accept, reject, error };
    return form;
  }

  async function decide(item, verb) {
    if (!controls || current !== item) return;
    const { reason, accept, reject, error } = controls;
    const why = reason.value.trim();
    error.textContent = "";
    if (verb === "reject" && !why) { error.textContent = t("review_reason_required"); reason.focus(); return; }
    accept.disabled = reject.disabled = true;
    try {
      const done = await api("POST", `/api/review/${encodeURIComponent(item.item_id)}/${verb}`, why ? { reason: why } : {});
      toast(t(verb === "accept" ? "review_accepted_toast" : "review_rejected_toast", { verdict: done.match_verdict }));
      const at = queue.findIndex((i) => i.item_id === item.item_id);
      const closed = new Set([item.item_id, ...(done.also_closed || [])]);
      if (filters.status === "open") {
        queue = queue.filter((i) => !closed.has(i.item_id));
        fill();
        await select(queue.length ? queue[Math.min(at, queue.length - 1)].item_id : null);
      } else {
        queue = queue.map((i) => (closed.has(i.item_id) ? { ...i, ...done, item_id: i.item_id } : i));
        fill();
        await select(item.item_id);
      }
      if (document.activeElement === reason || !document.activeElement || document.activeElement === document.body) {
        document.getElementById("main")?.focus();
      }
    } catch (err) {
      error.textContent = err.message;
      accept.disabled = reject.disabled = false;
    }
  }

  function move(step) {
    if (!queue.length) return;
    const at = queue.findIndex((i) => i.item_id === selected);
    const next = at < 0 ? 0 : Math.max(0, Math.min(queue.length - 1, at + step));
    if (queue[next].item_id !== selected) select(queue[next].item_id);
  }

  if (keyHandler) document.removeEventListener("keydown", keyHandler);
  keyHandler = (event) => {
    if (!root.isConnected) return;  // another page is showing (this one's handler goes when review renders again)
    if (event.key === "Escape") {
      shortcuts.hidden = true;
      if (typing(event.target)) event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const actions = {
      j: () => move(1), k: () => move(-1), "?": () => { shortcuts.hidden = !shortcuts.hidden; },
      a: () => { if (current && current.status === "open") decide(current, "accept"); },
      r: () => { if (controls) controls.reason.focus(); },
    };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  };
  document.addEventListener("keydown", keyHandler);

  fill();
  root.append(
    h("div", { class: "review-top" }, h("h1", {}, t("review_title")), hint),
    h("p", { class: "muted" }, t("review_intro")),
    h("form", { class: "inline card", id: "review-filters" },
      h("label", {}, t("review_dataset"), datasetSelect), h("label", {}, t("review_status"), statusSelect)),
    shortcuts,
    h("div", { class: "review-layout" },
      h("div", { class: "card list" }, summary, h("div", { class: "scroll" },
        h("table", { id: "review-queue" },
          h("thead", {}, h("tr", {}, h("th", {}, t("review_record")), h("th", {}, t("review_proposed")),
            h("th", { class: "num" }, t("review_probability")))),
          tbody))),
      detail));
  const first = params.item || (queue.length ? queue[0].item_id : null);
  if (first) await select(first);
}
