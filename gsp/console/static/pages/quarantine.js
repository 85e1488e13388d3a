// Quarantine: the records the pipeline held back, for a steward to release with fixes or discard with a reason.
// Filters (dataset, rule, date, status) live in the hash query, so other pages can link here:
// #/quarantine?dataset=telecom.subscriber&rule=id.shape&date=2025-01-31&status=open&item=<event id>.
// Every action is the API's (POST /api/quarantine/{id}/release|discard), attributed by it to the signed-in steward.
export const id = "quarantine";
export const path = "/quarantine";
export const title = "nav_quarantine";
export const menu = true;
export const roles = ["steward"];

export const strings = {
  en: {
    nav_quarantine: "Quarantine",
    quarantine_title: "Quarantined records",
    quarantine_intro: "Records the pipeline held back. Fix and release one to send it through cleaning again, or discard it with a reason.",
    quarantine_dataset: "Dataset", quarantine_rule: "Rule", quarantine_date: "Received on", quarantine_status: "Status",
    quarantine_any: "any", quarantine_filter: "Filter", quarantine_clear: "Clear",
    quarantine_open: "open", quarantine_released: "released", quarantine_discarded: "discarded", quarantine_all: "all",
    quarantine_received: "Received", quarantine_field: "Field", quarantine_reason: "Reason", quarantine_key: "Key",
    quarantine_shown: "{n} shown", quarantine_open_total: "{n} open in total",
    quarantine_empty: "No quarantined record matches these filters.",
    quarantine_pick: "Select a record in the list to see it.",
    quarantine_stage: "Stage", quarantine_source: "Source", quarantine_original: "Original record",
    quarantine_format: "decoded from {format}", quarantine_undecodable: "not readable as Avro: {error}",
    quarantine_path: "Field", quarantine_value: "Value", quarantine_flagged: "flagged by the rule",
    quarantine_fixes: "Release with fixes",
    quarantine_fixes_help: "Set the fields to correct (dotted paths, e.g. residence.ward_code); leave the value empty to clear an optional field.",
    quarantine_add_fix: "Add a field", quarantine_remove_fix: "Remove",
    quarantine_release: "Release", quarantine_discard: "Discard",
    quarantine_discard_help: "Discarding closes the record for good; say why.",
    quarantine_discard_reason: "Reason for discarding",
    quarantine_reason_required: "A reason is required to discard.",
    quarantine_released_toast: "Released as {id}", quarantine_discarded_toast: "Discarded",
    quarantine_history: "History", quarantine_history_received: "Received from {topic}",
    quarantine_history_resolved: "{status} by {who}", quarantine_resolution: "Resolution",
    quarantine_released_as: "Released as event {id}",
  },
  vi: {
    nav_quarantine: "Cách ly",
    quarantine_title: "Bản ghi bị cách ly",
    quarantine_intro: "Các bản ghi bị giữ lại trong quy trình. Sửa và giải phóng để bản ghi được làm sạch lại, hoặc loại bỏ kèm lý do.",
    quarantine_dataset: "Tập dữ liệu", quarantine_rule: "Quy tắc", quarantine_date: "Ngày nhận", quarantine_status: "Trạng thái",
    quarantine_any: "tất cả", quarantine_filter: "Lọc", quarantine_clear: "Xoá bộ lọc",
    quarantine_open: "đang mở", quarantine_released: "đã giải phóng", quarantine_discarded: "đã loại bỏ", quarantine_all: "tất cả",
    quarantine_received: "Nhận lúc", quarantine_field: "Trường", quarantine_reason: "Lý do", quarantine_key: "Khoá",
    quarantine_shown: "Hiển thị {n}", quarantine_open_total: "Tổng cộng {n} bản ghi đang mở",
    quarantine_empty: "Không có bản ghi bị cách ly nào khớp bộ lọc.",
    quarantine_pick: "Chọn một bản ghi trong danh sách để xem.",
    quarantine_stage: "Bước", quarantine_source: "Nguồn", quarantine_original: "Bản ghi gốc",
    quarantine_format: "giải mã từ {format}", quarantine_undecodable: "không đọc được dạng Avro: {error}",
    quarantine_path: "Trường", quarantine_value: "Giá trị", quarantine_flagged: "bị quy tắc đánh dấu",
    quarantine_fixes: "Giải phóng kèm sửa lỗi",
    quarantine_fixes_help: "Nhập các trường cần sửa (đường dẫn có dấu chấm, ví dụ residence.ward_code); để trống giá trị để xoá một trường không bắt buộc.",
    quarantine_add_fix: "Thêm trường", quarantine_remove_fix: "Bỏ",
    quarantine_release: "Giải phóng", quarantine_discard: "Loại bỏ",
    quarantine_discard_help: "Loại bỏ sẽ đóng bản ghi vĩnh viễn; hãy nêu lý do.",
    quarantine_discard_reason: "Lý do loại bỏ",
    quarantine_reason_required: "Cần nhập lý do để loại bỏ.",
    quarantine_released_toast: "Đã giải phóng thành {id}", quarantine_discarded_toast: "Đã loại bỏ",
    quarantine_history: "Lịch sử", quarantine_history_received: "Nhận từ {topic}",
    quarantine_history_resolved: "{status} bởi {who}", quarantine_resolution: "Cách xử lý",
    quarantine_released_as: "Đã giải phóng thành sự kiện {id}",
  },
};

const STATUSES = ["open", "released", "discarded", "all"];

function when(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "vi-VN");
}

// [dotted path, value] of every leaf of a record, the header and findings aside (fixes cannot touch them).
function leaves(value, prefix = "") {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [[prefix, value]];
  const out = [];
  for (const [name, child] of Object.entries(value)) {
    if (!prefix && (name === "header" || name === "findings")) continue;
    out.push(...leaves(child, prefix ? `${prefix}.${name}` : name));
  }
  return out;
}

function shown(value) {
  if (value === null || value === undefined) return "∅";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export async function render(root, ctx, params = {}) {
  const { api, h, t, toast, navigate } = ctx;
  const filters = {
    dataset: params.dataset || "", rule: params.rule || "", date: params.date || "",
    status: STATUSES.includes(params.status) ? params.status : "open",
  };
  const query = new URLSearchParams({ status: filters.status, limit: "200" });
  for (const name of ["dataset", "rule", "date"]) if (filters[name]) query.set(name, filters[name]);
  const [counts, items] = await Promise.all([api("GET", "/api/quarantine/counts"), api("GET", `/api/quarantine?${query}`)]);

  // Filters: choosing one rewrites the hash, which renders the page again with the new list.
  const datasets = [...new Set([...Object.keys(counts), ...(filters.dataset ? [filters.dataset] : [])])].sort();
  const rules = [...new Set([
    ...Object.entries(counts).filter(([d]) => !filters.dataset || d === filters.dataset).flatMap(([, r]) => Object.keys(r)),
    ...(filters.rule ? [filters.rule] : [])])].sort();
  const option = (value, label, current) => h("option", { value, selected: value === current }, label);
  const datasetSelect = h("select", { id: "quarantine-filter-dataset", name: "dataset" },
    option("", t("quarantine_any"), filters.dataset), datasets.map((d) => option(d, d, filters.dataset)));
  const ruleSelect = h("select", { id: "quarantine-filter-rule", name: "rule" },
    option("", t("quarantine_any"), filters.rule), rules.map((r) => option(r, r, filters.rule)));
  const dateInput = h("input", { id: "quarantine-filter-date", name: "date", type: "date", value: filters.date });
  const statusSelect = h("select", { id: "quarantine-filter-status", name: "status" },
    STATUSES.map((s) => option(s, t(`quarantine_${s}`), filters.status)));
  const go = (changes = {}) => {
    const next = { dataset: datasetSelect.value, rule: ruleSelect.value, date: dateInput.value, status: statusSelect.value, ...changes };
    const q = new URLSearchParams(Object.entries(next).filter(([name, v]) => v && !(name === "status" && v === "open")));
    navigate(`/quarantine${q.size ? `?${q}` : ""}`);
  };
  const filterForm = h("form", { class: "inline card", id: "quarantine-filters" },
    h("label", {}, t("quarantine_dataset"), datasetSelect), h("label", {}, t("quarantine_rule"), ruleSelect),
    h("label", {}, t("quarantine_date"), dateInput), h("label", {}, t("quarantine_status"), statusSelect),
    h("button", { type: "submit", class: "primary", id: "quarantine-apply" }, t("quarantine_filter")),
    h("button", { type: "button", id: "quarantine-clear", onclick: () => navigate("/quarantine") }, t("quarantine_clear")));
  filterForm.addEventListener("submit", (event) => { event.preventDefault(); go(); });
  datasetSelect.addEventListener("change", () => go({ rule: "" }));
  for (const el of [ruleSelect, statusSelect, dateInput]) el.addEventListener("change", () => go());

  const openTotal = Object.values(counts).reduce((n, r) => n + Object.values(r).reduce((a, b) => a + b, 0), 0);
  const tbody = h("tbody", {});
  const detail = h("div", { class: "card quarantine-detail", id: "quarantine-detail" },
    h("p", { class: "muted" }, t("quarantine_pick")));
  const rows = new Map();
  let selected = null;

  async function select(eventId) {
    selected = eventId;
    for (const [rid, row] of rows) row.classList.toggle("selected", rid === eventId);
    detail.replaceChildren(h("p", { class: "muted" }, t("loading")));
    try {
      const item = await api("GET", `/api/quarantine/${encodeURIComponent(eventId)}`);
      if (selected === eventId) detail.replaceChildren(...itemView(item));
    } catch (err) {
      if (selected === eventId) detail.replaceChildren(h("p", { class: "error" }, err.message));
    }
  }

  function statusPill(status) {
    return h("span", { class: `pill status-${status}` }, t(`quarantine_${status}`));
  }

  function itemView(item) {
    const original = item.original || {};
    const record = original.value;
    const isRecord = record !== null && typeof record === "object" && !Array.isArray(record);
    const paths = isRecord ? leaves(record) : [];
    const facts = h("dl", { class: "facts" },
      h("dt", {}, t("quarantine_rule")), h("dd", {}, h("code", { id: "quarantine-item-rule" }, item.rule)),
      h("dt", {}, t("quarantine_reason")), h("dd", { id: "quarantine-item-reason", class: "reason" }, item.reason),
      item.field ? [h("dt", {}, t("quarantine_field")), h("dd", {}, h("code", {}, item.field))] : null,
      h("dt", {}, t("quarantine_dataset")), h("dd", {}, item.dataset),
      h("dt", {}, t("quarantine_stage")), h("dd", {}, item.stage),
      h("dt", {}, t("quarantine_key")), h("dd", {}, h("code", {}, item.key ?? item.source_key)),
      h("dt", {}, t("quarantine_source")), h("dd", {}, `${item.source_system} · ${item.source_version}`),
      h("dt", {}, t("quarantine_status")), h("dd", {}, statusPill(item.status)));

    const originalView = isRecord
      ? h("table", { class: "original", id: "quarantine-original" },
        h("thead", {}, h("tr", {}, h("th", {}, t("quarantine_path")), h("th", {}, t("quarantine_value")))),
        h("tbody", {}, paths.map(([p, v]) => h("tr", { class: p === item.field ? "flagged" : null, dataset: { path: p } },
          h("td", {}, h("code", {}, p), p === item.field ? h("span", { class: "pill bad-pill" }, t("quarantine_flagged")) : null),
          h("td", { class: v === null || v === undefined ? "muted" : null }, shown(v))))))
      : h("pre", { id: "quarantine-original" }, shown(record));

    const history = h("ol", { class: "history", id: "quarantine-history" },
      h("li", {}, h("span", { class: "muted" }, when(item.received_at)), " ",
        t("quarantine_history_received", { topic: item.source_topic || item.stage })));
    if (item.status !== "open") {
      history.append(h("li", {}, h("span", { class: "muted" }, when(item.resolved_at)), " ",
        h("span", { class: "actor" }, t("quarantine_history_resolved", { status: t(`quarantine_${item.status}`), who: item.resolved_by })),
        item.resolution ? h("div", { class: "resolution" }, `${t("quarantine_resolution")}: ${item.resolution}`) : null));
    }

    const parts = [
      h("h2", {}, item.rule, " ", statusPill(item.status)),
      h("div", { class: "sidebyside" },
        h("div", {}, facts, h("h3", {}, t("quarantine_history")), history),
        h("div", {}, h("h3", {}, t("quarantine_original"), " ",
          h("span", { class: "muted small" }, t("quarantine_format", { format: original.format || "?" }))),
          original.avro_error ? h("p", { class: "warn small" }, t("quarantine_undecodable", { error: original.avro_error })) : null,
          originalView)),
    ];
    if (item.status === "open") parts.push(...actions(item, paths));
    return parts;
  }

  function actions(item, paths) {
    const error = h("p", { class: "error", id: "quarantine-action-error", role: "alert" });
    const list = h("datalist", { id: "quarantine-paths" }, paths.map(([p]) => h("option", { value: p })));
    const current = new Map(paths);
    const fixRows = h("div", { class: "fixes", id: "quarantine-fixes" });
    let n = 0;
    const addFix = (field = "", value = "") => {
      const i = n++;
      const valueInput = h("input", { id: `fix-value-${i}`, class: "fix-value", value, "aria-label": t("quarantine_value") });
      const fieldInput = h("input", { id: `fix-field-${i}`, class: "fix-field", list: "quarantine-paths", value: field,
        "aria-label": t("quarantine_path"), size: 18 });
      fieldInput.addEventListener("change", () => {
        if (!valueInput.value && current.has(fieldInput.value)) valueInput.value = shown(current.get(fieldInput.value)).replace(/^∅$/, "");
      });
      const row = h("div", { class: "fix" }, fieldInput, h("span", {}, "="), valueInput,
        h("button", { type: "button", class: "remove-fix", onclick: () => row.remove() }, t("quarantine_remove_fix")));
      fixRows.append(row);
    };
    if (item.field && current.has(item.field)) addFix(item.field, shown(current.get(item.field)).replace(/^∅$/, ""));
    else addFix(item.field || "");

    const releaseButton = h("button", { type: "submit", class: "primary", id: "quarantine-release", "data-action": "release" },
      t("quarantine_release"));
    const release = h("form", { class: "card action", id: "quarantine-release-form" },
      h("h3", {}, t("quarantine_fixes")), h("p", { class: "muted small" }, t("quarantine_fixes_help")), list, fixRows,
      h("p", { class: "buttons" },
        h("button", { type: "button", id: "quarantine-add-fix", onclick: () => addFix() }, t("quarantine_add_fix")),
        releaseButton));
    const reason = h("input", { id: "quarantine-discard-reason", name: "reason", required: true,
      "aria-label": t("quarantine_discard_reason"), placeholder: t("quarantine_discard_reason") });
    const discardButton = h("button", { type: "submit", id: "quarantine-discard", "data-action": "discard" }, t("quarantine_discard"));
    const discard = h("form", { class: "card action", id: "quarantine-discard-form" },
      h("h3", {}, t("quarantine_discard")), h("p", { class: "muted small" }, t("quarantine_discard_help")),
      h("p", { class: "buttons" }, reason, discardButton));

    const act = async (button, body, verb) => {
      error.textContent = "";
      button.disabled = true;
      try {
        const done = await api("POST", `/api/quarantine/${encodeURIComponent(item.event_id)}/${verb}`, body);
        toast(verb === "release" ? t("quarantine_released_toast", { id: done.released_event_id }) : t("quarantine_discarded_toast"));
        await afterAction(item.event_id);
      } catch (err) {
        error.textContent = err.message;
        button.disabled = false;
      }
    };
    release.addEventListener("submit", (event) => {
      event.preventDefault();
      const fixes = {};
      for (const row of fixRows.querySelectorAll(".fix")) {
        const field = row.querySelector(".fix-field").value.trim();
        if (field) fixes[field] = row.querySelector(".fix-value").value === "" ? null : row.querySelector(".fix-value").value;
      }
      act(releaseButton, { fixes }, "release");
    });
    discard.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!reason.value.trim()) { error.textContent = t("quarantine_reason_required"); reason.focus(); return; }
      act(discardButton, { reason: reason.value.trim() }, "discard");
    });
    discard.noValidate = true;  // the page says why, in the page's language
    return [h("div", { class: "actions" }, release, discard), error];
  }

  // After an action the list is read again; the item shows resolved (the steward sees who acted), or the next one.
  async function afterAction(eventId) {
    const fresh = await api("GET", `/api/quarantine?${query}`);
    fill(fresh);
    const still = fresh.some((i) => i.event_id === eventId);
    if (still) await select(eventId);
    else {
      const item = await api("GET", `/api/quarantine/${encodeURIComponent(eventId)}`);
      selected = eventId;
      detail.replaceChildren(...itemView(item));
    }
  }

  const summary = h("p", { class: "muted", id: "quarantine-summary" });
  function fill(list) {
    rows.clear();
    summary.textContent = `${t("quarantine_shown", { n: list.length })} · ${t("quarantine_open_total", { n: openTotal })}`;
    if (!list.length) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: 3, class: "muted", id: "quarantine-empty" }, t("quarantine_empty"))));
      return;
    }
    tbody.replaceChildren(...list.map((item) => {
      const row = h("tr", { dataset: { id: item.event_id }, tabindex: 0, class: item.event_id === selected ? "selected" : null },
        h("td", { class: "nowrap" }, when(item.received_at), item.status !== "open" ? h("div", {}, statusPill(item.status)) : null),
        h("td", {}, h("code", {}, item.rule), h("div", { class: "muted small" }, item.dataset, item.field ? ` · ${item.field}` : "")),
        h("td", { class: "reason" }, h("div", { class: "clamp", title: item.reason }, item.reason)));
      row.addEventListener("click", () => select(item.event_id));
      row.addEventListener("keydown", (event) => { if (event.key === "Enter") select(item.event_id); });
      rows.set(item.event_id, row);
      return row;
    }));
  }
  fill(items);

  const table = h("table", { id: "quarantine-list" },
    h("thead", {}, h("tr", {}, h("th", {}, t("quarantine_received")), h("th", {}, t("quarantine_rule")),
      h("th", {}, t("quarantine_reason")))),
    tbody);
  root.append(h("h1", {}, t("quarantine_title")), h("p", { class: "muted" }, t("quarantine_intro")), filterForm,
    h("div", { class: "quarantine-layout" }, h("div", { class: "card list" }, summary, h("div", { class: "scroll" }, table)), detail));
  const first = params.item || (items.length ? items[0].event_id : null);
  if (first) await select(first);
}
