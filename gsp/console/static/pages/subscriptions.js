// Subscriptions: the data owner answers requests before their deadline; a consumer follows its own subscriptions.
// #/subscriptions lists what the signed-in agency may see (GET /api/subscriptions: the API decides what that is);
// #/subscriptions?id=<subscription id> shows one subscription with every version (GET /api/subscriptions/{id}):
// another agency's subscription is refused by the API (404) and the page shows that refusal, nothing else.
export const id = "subscriptions";
export const path = "/subscriptions";
export const title = "nav_subscriptions";
export const menu = true;
export const roles = ["owner", "consumer", "admin", "ops"];

export const strings = {
  en: {
    nav_subscriptions: "Subscriptions",
    subscriptions_waiting: "Requests waiting for your decision",
    subscriptions_waiting_none: "No request is waiting for your decision.",
    subscriptions_mine: "Your agency's subscriptions",
    subscriptions_owned: "Subscriptions to your datasets",
    subscriptions_all: "All subscriptions",
    subscriptions_none: "No subscription yet.",
    subscriptions_id: "Subscription", subscriptions_agency: "Agency", subscriptions_dataset: "Dataset",
    subscriptions_state: "State", subscriptions_version: "Version", subscriptions_active: "Active version",
    subscriptions_latest: "Latest request", subscriptions_topic: "Delivered on", subscriptions_mode: "Mode",
    subscriptions_fields: "Fields", subscriptions_filter: "Row filter", subscriptions_no_filter: "every row",
    subscriptions_verdicts: "Identity verdicts", subscriptions_purpose: "Purpose",
    subscriptions_legal: "Legal basis", subscriptions_requested: "Requested", subscriptions_deadline: "Answer by",
    subscriptions_decided: "Decided", subscriptions_ended: "Ended", subscriptions_valid: "Valid",
    subscriptions_from: "from {at}", subscriptions_until: "until {at}", subscriptions_open_ended: "until revoked",
    subscriptions_backfill: "with earlier records", subscriptions_consent: "each person's consent",
    subscriptions_left: "{time} left ({days} working days)", subscriptions_overdue: "Overdue by {time}",
    subscriptions_overdue_flag: "overdue", subscriptions_days: "{n} d", subscriptions_hours: "{n} h",
    subscriptions_minutes: "{n} min",
    subscriptions_reason: "Reason (required to refuse)", subscriptions_reason_end: "Reason",
    subscriptions_approve: "Approve", subscriptions_refuse: "Refuse", subscriptions_suspend: "Suspend",
    subscriptions_resume: "Resume", subscriptions_revoke: "Revoke",
    subscriptions_approved: "Version {version} of {id} approved.", subscriptions_refused: "Version {version} of {id} refused.",
    subscriptions_done: "{id}: {state}.",
    subscriptions_back: "← All subscriptions", subscriptions_open: "Details",
    subscriptions_versions: "Versions", subscriptions_by: "by {who}",
    subscriptions_refusal: "The platform refused to show this subscription:",
    subscriptions_actions: "Actions",
    subscriptions_new: "Request a subscription", subscriptions_new_name: "Name (a slug, one per purpose)",
    subscriptions_new_filter: "Row filter (field=value1,value2; one per line)", subscriptions_send: "Send the request",
    subscriptions_sent: "{id}: requested; the owner answers within the deadline.",
    state_requested: "requested", state_approved: "approved", state_refused: "refused", state_active: "active",
    state_suspended: "suspended", state_revoked: "revoked", state_expired: "expired", state_superseded: "superseded",
  },
  vi: {
    nav_subscriptions: "Đăng ký",
    subscriptions_waiting: "Yêu cầu đang chờ bạn quyết định",
    subscriptions_waiting_none: "Không có yêu cầu nào đang chờ bạn quyết định.",
    subscriptions_mine: "Các đăng ký của cơ quan bạn",
    subscriptions_owned: "Các đăng ký vào tập dữ liệu của bạn",
    subscriptions_all: "Tất cả đăng ký",
    subscriptions_none: "Chưa có đăng ký nào.",
    subscriptions_id: "Đăng ký", subscriptions_agency: "Cơ quan", subscriptions_dataset: "Tập dữ liệu",
    subscriptions_state: "Trạng thái", subscriptions_version: "Phiên bản", subscriptions_active: "Phiên bản hiệu lực",
    subscriptions_latest: "Yêu cầu gần nhất", subscriptions_topic: "Kênh nhận", subscriptions_mode: "Hình thức",
    subscriptions_fields: "Trường dữ liệu", subscriptions_filter: "Bộ lọc bản ghi", subscriptions_no_filter: "mọi bản ghi",
    subscriptions_verdicts: "Kết quả xác thực danh tính", subscriptions_purpose: "Mục đích",
    subscriptions_legal: "Căn cứ pháp lý", subscriptions_requested: "Ngày yêu cầu", subscriptions_deadline: "Hạn trả lời",
    subscriptions_decided: "Quyết định", subscriptions_ended: "Kết thúc", subscriptions_valid: "Hiệu lực",
    subscriptions_from: "từ {at}", subscriptions_until: "đến {at}", subscriptions_open_ended: "đến khi thu hồi",
    subscriptions_backfill: "kèm bản ghi trước đó", subscriptions_consent: "sự đồng ý của từng người",
    subscriptions_left: "còn {time} ({days} ngày làm việc)", subscriptions_overdue: "Quá hạn {time}",
    subscriptions_overdue_flag: "quá hạn", subscriptions_days: "{n} ngày", subscriptions_hours: "{n} giờ",
    subscriptions_minutes: "{n} phút",
    subscriptions_reason: "Lý do (bắt buộc khi từ chối)", subscriptions_reason_end: "Lý do",
    subscriptions_approve: "Phê duyệt", subscriptions_refuse: "Từ chối", subscriptions_suspend: "Tạm dừng",
    subscriptions_resume: "Tiếp tục", subscriptions_revoke: "Thu hồi",
    subscriptions_approved: "Đã phê duyệt phiên bản {version} của {id}.", subscriptions_refused: "Đã từ chối phiên bản {version} của {id}.",
    subscriptions_done: "{id}: {state}.",
    subscriptions_back: "← Tất cả đăng ký", subscriptions_open: "Chi tiết",
    subscriptions_versions: "Các phiên bản", subscriptions_by: "bởi {who}",
    subscriptions_refusal: "Nền tảng từ chối hiển thị đăng ký này:",
    subscriptions_actions: "Thao tác",
    subscriptions_new: "Yêu cầu đăng ký mới", subscriptions_new_name: "Tên (chữ thường, mỗi mục đích một tên)",
    subscriptions_new_filter: "Bộ lọc bản ghi (trường=giá trị1,giá trị2; mỗi dòng một trường)", subscriptions_send: "Gửi yêu cầu",
    subscriptions_sent: "{id}: đã gửi yêu cầu; chủ quản dữ liệu sẽ trả lời trong thời hạn.",
    state_requested: "chờ duyệt", state_approved: "đã duyệt", state_refused: "bị từ chối", state_active: "đang hiệu lực",
    state_suspended: "tạm dừng", state_revoked: "đã thu hồi", state_expired: "hết hạn", state_superseded: "đã thay thế",
  },
};

function when(iso) {
  if (!iso) return "—";
  const locale = document.documentElement.lang === "en" ? "en-GB" : "vi-VN";
  return new Date(iso).toLocaleString(locale, { dateStyle: "short", timeStyle: "short" });
}

function span(t, ms) {
  const minutes = Math.max(1, Math.round(Math.abs(ms) / 60000));
  const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), rest = minutes % 60;
  if (days) return `${t("subscriptions_days", { n: days })} ${t("subscriptions_hours", { n: hours })}`;
  if (hours) return `${t("subscriptions_hours", { n: hours })} ${t("subscriptions_minutes", { n: rest })}`;
  return t("subscriptions_minutes", { n: rest });
}

function pill(h, t, state) {
  return h("span", { class: `pill ${String(state).toUpperCase()}` }, t(`state_${state}`));
}

function filterText(t, rowFilter) {
  const parts = Object.entries(rowFilter || {}).map(([field, values]) => `${field} ∈ {${values.join(", ")}}`);
  return parts.length ? parts.join("; ") : t("subscriptions_no_filter");
}

function ownsDataset(ctx, dataset) {
  return (ctx.identity.grants || []).some((g) => g.role === "owner" && (g.datasets || []).some((d) => d === dataset || d === "*"));
}

function deadline(h, t, version) {
  if (version.state !== "requested") return when(version.due_at);
  const left = new Date(version.due_at).getTime() - Date.now();
  if (version.overdue || left < 0) {
    return h("span", { class: "bad deadline overdue", "data-overdue": "true" },
      h("span", { class: "pill FAILED" }, t("subscriptions_overdue_flag")), " ", t("subscriptions_overdue", { time: span(t, left) }),
      h("br"), h("small", { class: "muted" }, when(version.due_at)));
  }
  return h("span", { class: "deadline" }, t("subscriptions_left", { time: span(t, left), days: version.working_days_left === null || version.working_days_left === undefined ? "?"
    : version.working_days_left.toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "vi-VN") }),
    h("br"), h("small", { class: "muted" }, when(version.due_at)));
}

function terms(h, t, v) {
  return [
    h("td", { class: "fields" }, (v.fields || []).join(", ")),
    h("td", {}, filterText(t, v.row_filter)),
    h("td", {}, v.purpose, v.consent ? h("small", { class: "muted" }, ` (${t("subscriptions_consent")})`) : null),
    h("td", {}, v.legal_basis),
  ];
}

function detailLink(h, t, sid) {
  return h("a", { href: `#/subscriptions?id=${encodeURIComponent(sid)}`, "data-action": "open" }, sid);
}

// An approve/refuse form for one requested version: reason input, two buttons, the API's message on failure.
function decisionCell(ctx, sid, version, after) {
  const { h, t, api, toast } = ctx;
  const reason = h("input", { type: "text", name: "reason", "data-action": "reason", placeholder: t("subscriptions_reason") });
  const error = h("p", { class: "error" });
  const decide = (action) => async (event) => {
    event.preventDefault();
    error.textContent = "";
    const buttons = event.target.closest("form").querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const text = reason.value.trim();
      await api("POST", `/api/subscriptions/${encodeURIComponent(sid)}/versions/${version}/${action}`, text ? { reason: text } : {});
      toast(t(action === "approve" ? "subscriptions_approved" : "subscriptions_refused", { id: sid, version }));
      await after();
    } catch (err) {
      error.textContent = err.message;
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  return h("form", { class: "decision", onsubmit: (e) => e.preventDefault() }, reason,
    h("span", { class: "buttons" },
      h("button", { type: "button", class: "primary", "data-action": "approve", onclick: decide("approve") }, t("subscriptions_approve")),
      h("button", { type: "button", "data-action": "refuse", onclick: decide("refuse") }, t("subscriptions_refuse"))),
    error);
}

// A consumer's request: a dataset of the catalog, its shareable fields, purpose and legal basis (POST /api/subscriptions).
async function requestForm(ctx) {
  const { h, t, api, toast, navigate } = ctx;
  const catalog = (await api("GET", "/api/catalog")).filter((d) => d.shareable);
  const dataset = h("select", { name: "dataset", id: "subscriptions-new-dataset" },
    catalog.map((d) => h("option", { value: d.name }, d.name)));
  const fields = h("div", { class: "field-choices", id: "subscriptions-new-fields", "data-dataset": "" });
  const showFields = async () => {
    const name = dataset.value;
    fields.replaceChildren();
    fields.dataset.dataset = "";
    if (!name) return;
    try {
      const entry = await api("GET", `/api/catalog/${encodeURIComponent(name)}`);
      if (dataset.value !== name) return;
      fields.replaceChildren(...entry.fields.map((f) => h("label", { class: "choice", title: f.description || "" },
        h("input", { type: "checkbox", name: "fields", value: f.name }), f.name,
        h("small", { class: "muted" }, `(${f.sensitivity})`))));
      fields.dataset.dataset = name;
    } catch (err) { fields.replaceChildren(h("p", { class: "error" }, err.message)); }
  };
  dataset.addEventListener("change", showFields);
  await showFields();
  const name = h("input", { type: "text", name: "name", id: "subscriptions-new-name", value: "default" });
  const rowFilter = h("textarea", { name: "row_filter", id: "subscriptions-new-filter", rows: 2 });
  const purpose = h("input", { type: "text", name: "purpose", id: "subscriptions-new-purpose", size: 50 });
  const legal = h("input", { type: "text", name: "legal_basis", id: "subscriptions-new-legal", size: 40 });
  const backfill = h("input", { type: "checkbox", name: "backfill", id: "subscriptions-new-backfill" });
  const error = h("p", { class: "error", id: "subscriptions-new-error" });
  const form = h("form", { id: "subscriptions-new", class: "request-form" },
    h("div", { class: "inline-fields" },
      h("label", {}, t("subscriptions_dataset"), dataset), h("label", {}, t("subscriptions_new_name"), name)),
    h("fieldset", {}, h("legend", {}, t("subscriptions_fields")), fields),
    h("label", {}, t("subscriptions_new_filter"), rowFilter),
    h("div", { class: "inline-fields" },
      h("label", {}, t("subscriptions_purpose"), purpose), h("label", {}, t("subscriptions_legal"), legal)),
    h("label", { class: "choice" }, backfill, t("subscriptions_backfill")),
    error,
    h("p", {}, h("button", { type: "submit", class: "primary", "data-action": "request" }, t("subscriptions_send"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const filter = {};
    for (const line of rowFilter.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const [field, values = ""] = line.split("=", 2);
      filter[field.trim()] = values.split(",").map((v) => v.trim()).filter(Boolean);
    }
    try {
      const asked = await api("POST", "/api/subscriptions", {
        dataset: dataset.value, name: name.value.trim() || "default", row_filter: filter, backfill: backfill.checked,
        fields: [...fields.querySelectorAll("input:checked")].map((i) => i.value),
        purpose: purpose.value, legal_basis: legal.value,
      });
      toast(t("subscriptions_sent", { id: asked.subscription_id }));
      navigate(`/subscriptions?id=${encodeURIComponent(asked.subscription_id)}`);
    } catch (err) { error.textContent = err.message; }
  });
  return h("details", { class: "card", id: "subscriptions-request" }, h("summary", {}, t("subscriptions_new")), form);
}

async function listView(root, ctx) {
  const { h, t, api, hasRole } = ctx;
  const all = await api("GET", "/api/subscriptions");
  root.replaceChildren(h("h1", {}, t("nav_subscriptions")));
  const refresh = () => listView(root, ctx);

  if (hasRole("owner")) {
    const waiting = [];
    for (const s of all) {
      for (const v of s.versions) {
        if (v.state === "requested" && ownsDataset(ctx, s.dataset)) waiting.push({ s, v });
      }
    }
    waiting.sort((a, b) => new Date(a.v.due_at) - new Date(b.v.due_at));
    root.append(h("h2", {}, t("subscriptions_waiting")));
    if (!waiting.length) {
      root.append(h("p", { class: "muted", id: "subscriptions-waiting-none" }, t("subscriptions_waiting_none")));
    } else {
      root.append(h("table", { id: "subscriptions-waiting", class: "subscriptions-waiting" },
        h("thead", {}, h("tr", {}, [
          "subscriptions_id", "subscriptions_fields", "subscriptions_filter", "subscriptions_purpose", "subscriptions_legal",
          "subscriptions_deadline", "subscriptions_actions"].map((k) => h("th", {}, t(k))))),
        h("tbody", {}, waiting.map(({ s, v }) => h("tr", {
          "data-id": s.subscription_id, "data-version": v.version, class: v.overdue ? "overdue" : null,
        },
        h("td", {}, detailLink(h, t, s.subscription_id), h("br"),
          h("small", { class: "muted" }, `${s.agency} · ${t("subscriptions_version")} ${v.version}`), h("br"),
          h("small", { class: "muted" }, `${t("subscriptions_requested")}: ${when(v.requested_at)}`)),
        terms(h, t, v),
        h("td", {}, deadline(h, t, v)),
        h("td", {}, decisionCell(ctx, s.subscription_id, v.version, refresh)))))));
    }
  }

  if (hasRole("consumer")) {
    try { root.append(await requestForm(ctx)); } catch (err) { root.append(h("p", { class: "error" }, err.message)); }
  }

  const heading = hasRole("admin", "ops") ? "subscriptions_all" : hasRole("owner") ? "subscriptions_owned" : "subscriptions_mine";
  root.append(h("h2", {}, t(heading)));
  if (!all.length) {
    root.append(h("p", { class: "muted" }, t("subscriptions_none")));
    return;
  }
  root.append(h("table", { id: "subscriptions-list" },
    h("thead", {}, h("tr", {}, [
      "subscriptions_id", "subscriptions_agency", "subscriptions_state", "subscriptions_active", "subscriptions_latest",
      "subscriptions_fields", "subscriptions_topic"].map((k) => h("th", {}, t(k))))),
    h("tbody", {}, all.map((s) => {
      const latest = s.versions[s.versions.length - 1];
      const shown = s.versions.find((v) => v.version === s.active_version) || latest;
      return h("tr", { "data-id": s.subscription_id, "data-state": s.state },
        h("td", {}, detailLink(h, t, s.subscription_id)),
        h("td", {}, s.agency),
        h("td", {}, pill(h, t, s.state), s.overdue ? [" ", h("span", { class: "pill FAILED" }, t("subscriptions_overdue_flag"))] : null),
        h("td", {}, s.active_version ?? "—"),
        h("td", {}, `v${s.latest_version} `, pill(h, t, s.latest_state)),
        h("td", { class: "fields" }, (shown.fields || []).join(", ")),
        h("td", {}, h("code", {}, s.topic)));
    }))));
}

async function detailView(root, ctx, sid) {
  const { h, t, api, hasRole, toast, identity } = ctx;
  root.replaceChildren(h("p", {}, h("a", { href: "#/subscriptions", id: "subscriptions-back" }, t("subscriptions_back"))));
  let s;
  try {
    s = await api("GET", `/api/subscriptions/${encodeURIComponent(sid)}`);
  } catch (err) {
    root.append(h("h1", {}, sid),
      h("div", { class: "card", id: "subscription-refused" },
        h("p", {}, t("subscriptions_refusal")),
        h("p", { class: "error", "data-status": err.status ?? "" }, err.message)));
    return;
  }
  const again = () => detailView(root, ctx, sid);
  const owner = ownsDataset(ctx, s.dataset);
  root.append(h("h1", {}, s.subscription_id, " ", pill(h, t, s.state)),
    h("dl", { class: "card subscription-facts", "data-id": s.subscription_id },
      h("dt", {}, t("subscriptions_agency")), h("dd", {}, s.agency),
      h("dt", {}, t("subscriptions_dataset")), h("dd", {}, s.dataset),
      h("dt", {}, t("subscriptions_mode")), h("dd", {}, s.mode),
      h("dt", {}, t("subscriptions_active")), h("dd", {}, s.active_version ?? "—"),
      h("dt", {}, t("subscriptions_topic")), h("dd", {}, h("code", {}, s.topic))));

  // Ending actions: the owner suspends, resumes and revokes; the consumer may revoke its own.
  const ends = [];
  if (owner && s.state === "active") ends.push("suspend");
  if (owner && s.state === "suspended") ends.push("resume");
  if ((owner || (hasRole("consumer") && s.agency === identity.agency)) && ["active", "suspended"].includes(s.state)) ends.push("revoke");
  if (ends.length) {
    const reason = h("input", { type: "text", name: "reason", "data-action": "end-reason", placeholder: t("subscriptions_reason_end") });
    const error = h("p", { class: "error" });
    const act = (action) => async () => {
      error.textContent = "";
      try {
        const text = reason.value.trim();
        const after = await api("POST", `/api/subscriptions/${encodeURIComponent(sid)}/${action}`, text ? { reason: text } : {});
        toast(t("subscriptions_done", { id: sid, state: t(`state_${after.state}`) }));
        await again();
      } catch (err) { error.textContent = err.message; }
    };
    root.append(h("div", { class: "card subscription-ends" }, h("form", { class: "inline", onsubmit: (e) => e.preventDefault() },
      reason, ends.map((a) => h("button", { type: "button", "data-action": a, onclick: act(a) }, t(`subscriptions_${a}`)))), error));
  }

  root.append(h("h2", {}, t("subscriptions_versions")),
    h("table", { id: "subscription-versions" },
      h("thead", {}, h("tr", {}, [
        "subscriptions_version", "subscriptions_state", "subscriptions_fields", "subscriptions_filter", "subscriptions_purpose",
        "subscriptions_legal", "subscriptions_valid", "subscriptions_requested", "subscriptions_deadline", "subscriptions_decided",
      ].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, [...s.versions].reverse().map((v) => h("tr", { "data-id": v.version, "data-state": v.state },
        h("td", {}, `v${v.version}`),
        h("td", {}, pill(h, t, v.state)),
        terms(h, t, v),
        h("td", {}, v.valid_from ? t("subscriptions_from", { at: when(v.valid_from) }) : "—", h("br"),
          v.valid_until ? t("subscriptions_until", { at: when(v.valid_until) }) : t("subscriptions_open_ended"),
          v.backfill ? [h("br"), h("small", { class: "muted" }, t("subscriptions_backfill"))] : null),
        h("td", {}, when(v.requested_at), h("br"), h("small", { class: "muted" }, t("subscriptions_by", { who: v.requested_by }))),
        h("td", {}, deadline(h, t, v)),
        h("td", {},
          v.state === "requested" && owner ? decisionCell(ctx, s.subscription_id, v.version, again) : null,
          v.decided_at ? [when(v.decided_at), h("br"), h("small", { class: "muted" }, t("subscriptions_by", { who: v.decided_by }))] : null,
          v.reason ? h("p", { class: "reason" }, v.reason) : null,
          v.ended_at ? h("p", { class: "muted" }, `${t("subscriptions_ended")}: ${when(v.ended_at)} ${v.end_reason || ""}`) : null))))));
}

export async function render(root, ctx, params = {}) {
  if (params.id) await detailView(root, ctx, params.id);
  else await listView(root, ctx);
}
