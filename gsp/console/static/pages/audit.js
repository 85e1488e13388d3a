// Audit: who received a person's data (the portal and admin: POST /api/audit/person, the id in the body, never in a
// URL), and the audit ledger's own check (admin and ops: GET /api/audit/verify, every chain and head).
export const id = "audit";
export const path = "/audit";
export const title = "nav_audit";
export const menu = true;
export const roles = ["portal", "admin", "ops"];

export const strings = {
  en: {
    nav_audit: "Audit",
    audit_person: "Who received this person's data",
    audit_person_help: "The ledger answers with every agency that received the person's records and every verification asked about them. The personal id is sent in the request body and is not kept in this page's address.",
    audit_personal_id: "Personal id (12-digit CCCD or 9-digit CMND)",
    audit_lookup: "Look up",
    audit_deliveries: "Deliveries",
    audit_none: "The ledger records no agency receiving this person's data.",
    audit_verifications: "Verifications asked about this person",
    audit_consents: "Consent on record",
    audit_agency: "Agency", audit_fields: "Fields", audit_records: "Records",
    audit_first: "First", audit_last: "Last", audit_subscription: "Subscription (version)", audit_purpose: "Purpose",
    audit_legal: "Legal basis", audit_channel: "Channel", audit_verdicts: "Verdicts", audit_at: "When",
    audit_given: "Given", audit_withdrawn: "Withdrawn", audit_recorded_by: "Recorded by", audit_consent: "Consent",
    audit_ledger: "Audit ledger verification",
    audit_ledger_help: "Every chain is re-hashed from its first entry and checked against its signed heads.",
    audit_verify: "Verify again",
    audit_verified: "Verified: no finding",
    audit_broken: "Findings: the ledger does not check out",
    audit_chains: "Chains", audit_entries: "Entries", audit_heads: "Signed heads", audit_chain: "Chain",
    audit_findings: "Findings", audit_seq: "Entry", audit_problem: "Problem", audit_warnings: "Warnings",
    audit_checked_at: "Checked at {at}",
  },
  vi: {
    nav_audit: "Kiểm toán",
    audit_person: "Ai đã nhận dữ liệu của người này",
    audit_person_help: "Sổ kiểm toán trả về mọi cơ quan đã nhận bản ghi của người này và mọi yêu cầu xác thực về họ. Số định danh được gửi trong nội dung yêu cầu, không lưu trong địa chỉ của trang.",
    audit_personal_id: "Số định danh cá nhân (CCCD 12 số hoặc CMND 9 số)",
    audit_lookup: "Tra cứu",
    audit_deliveries: "Các lần chia sẻ",
    audit_none: "Sổ kiểm toán không ghi nhận cơ quan nào nhận dữ liệu của người này.",
    audit_verifications: "Các yêu cầu xác thực về người này",
    audit_consents: "Sự đồng ý đã ghi nhận",
    audit_agency: "Cơ quan", audit_fields: "Trường dữ liệu", audit_records: "Số bản ghi",
    audit_first: "Lần đầu", audit_last: "Lần cuối", audit_subscription: "Đăng ký (phiên bản)", audit_purpose: "Mục đích",
    audit_legal: "Căn cứ pháp lý", audit_channel: "Kênh", audit_verdicts: "Kết quả", audit_at: "Thời điểm",
    audit_given: "Đồng ý", audit_withdrawn: "Rút lại", audit_recorded_by: "Người ghi nhận", audit_consent: "Đồng ý",
    audit_ledger: "Kiểm tra sổ kiểm toán",
    audit_ledger_help: "Mỗi chuỗi được băm lại từ bản ghi đầu tiên và đối chiếu với các đầu chuỗi đã ký.",
    audit_verify: "Kiểm tra lại",
    audit_verified: "Hợp lệ: không có sai lệch",
    audit_broken: "Có sai lệch: sổ kiểm toán không khớp",
    audit_chains: "Số chuỗi", audit_entries: "Số bản ghi", audit_heads: "Đầu chuỗi đã ký", audit_chain: "Chuỗi",
    audit_findings: "Sai lệch", audit_seq: "Bản ghi", audit_problem: "Vấn đề", audit_warnings: "Cảnh báo",
    audit_checked_at: "Kiểm tra lúc {at}",
  },
};

function when(ms) {
  if (ms === null || ms === undefined) return "—";
  const locale = document.documentElement.lang === "en" ? "en-GB" : "vi-VN";
  return new Date(ms).toLocaleString(locale, { dateStyle: "short", timeStyle: "short" });
}

function table(h, t, tableId, columns, rows) {
  return h("table", { id: tableId },
    h("thead", {}, h("tr", {}, columns.map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows));
}

function personAnswer(h, t, answer) {
  const out = [h("h3", {}, t("audit_deliveries"))];
  if (!answer.deliveries.length) out.push(h("p", { class: "muted", id: "audit-none" }, t("audit_none")));
  else {
    out.push(table(h, t, "audit-deliveries", ["audit_agency", "audit_fields", "audit_records",
      "audit_first", "audit_last", "audit_subscription", "audit_purpose", "audit_legal", "audit_channel"],
    answer.deliveries.map((d) => h("tr", { "data-id": d.subscription_id, "data-agency": d.agency },
      h("td", {}, d.agency), h("td", { class: "fields" }, (d.fields || []).join(", ")),
      h("td", { class: "num" }, d.records), h("td", {}, when(d.first_at)), h("td", {}, when(d.last_at)),
      h("td", {}, d.subscription_id, h("br"), h("small", { class: "muted" }, `v${d.version}`)),
      h("td", {}, d.purpose), h("td", {}, d.legal_basis), h("td", {}, d.channel)))));
  }
  if ((answer.verifications || []).length) {
    out.push(h("h3", {}, t("audit_verifications")),
      table(h, t, "audit-verifications", ["audit_agency", "audit_fields", "audit_verdicts", "audit_records", "audit_first",
        "audit_last", "audit_subscription", "audit_purpose", "audit_legal", "audit_channel"],
      answer.verifications.map((d) => h("tr", { "data-id": d.subscription_id, "data-agency": d.agency },
        h("td", {}, d.agency), h("td", { class: "fields" }, (d.fields || []).join(", ")),
        h("td", {}, (d.verdicts || []).map((v) => h("span", { class: `pill ${String(v).toUpperCase()}` }, v))),
        h("td", { class: "num" }, d.records), h("td", {}, when(d.first_at)), h("td", {}, when(d.last_at)),
        h("td", {}, d.subscription_id, h("br"), h("small", { class: "muted" }, `v${d.version}`)),
        h("td", {}, d.purpose), h("td", {}, d.legal_basis), h("td", {}, d.channel)))));
  }
  if ((answer.consents || []).length) {
    out.push(h("h3", {}, t("audit_consents")),
      table(h, t, "audit-consents", ["audit_subscription", "audit_consent", "audit_at", "audit_recorded_by"],
        answer.consents.map((c) => h("tr", { "data-id": c.subscription_id },
          h("td", {}, c.subscription_id), h("td", {}, t(c.given ? "audit_given" : "audit_withdrawn")),
          h("td", {}, when(c.at)), h("td", {}, c.recorded_by)))));
  }
  return out;
}

function personCard(ctx) {
  const { h, t, api } = ctx;
  const input = h("input", { type: "text", id: "audit-personal-id", name: "personal_id", inputmode: "numeric",
    autocomplete: "off", pattern: "[0-9]{9}|[0-9]{12}", required: true, size: 16 });
  const error = h("p", { class: "error", id: "audit-person-error" });
  const result = h("div", { id: "audit-person-result" });
  const button = h("button", { type: "submit", class: "primary", id: "audit-lookup", "data-action": "lookup" }, t("audit_lookup"));
  const form = h("form", { class: "inline", id: "audit-person" }, h("label", {}, t("audit_personal_id"), input), button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    result.replaceChildren();
    button.disabled = true;
    try {
      const answer = await api("POST", "/api/audit/person", { personal_id: input.value.trim() });
      result.replaceChildren(...personAnswer(h, t, answer));
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "card", id: "audit-person-card" },
    h("h2", {}, t("audit_person")), h("p", { class: "muted" }, t("audit_person_help")), form, error, result);
}

function verifyAnswer(h, t, report) {
  const chains = Object.entries(report.chains || {}).sort(([a], [b]) => a.localeCompare(b));
  const entries = chains.reduce((n, [, count]) => n + count, 0);
  const out = [
    h("p", { id: "audit-verify-state", class: report.ok ? "ok" : "bad", "data-ok": String(report.ok) },
      h("strong", {}, t(report.ok ? "audit_verified" : "audit_broken"))),
    h("div", { class: "scores audit-totals" },
      h("div", {}, h("div", { class: "score", id: "audit-chains" }, chains.length), h("div", { class: "muted" }, t("audit_chains"))),
      h("div", {}, h("div", { class: "score", id: "audit-entries" }, entries), h("div", { class: "muted" }, t("audit_entries"))),
      h("div", {}, h("div", { class: "score", id: "audit-heads" }, report.heads), h("div", { class: "muted" }, t("audit_heads"))),
      h("div", {}, h("div", { class: `score ${report.findings.length ? "bad" : "ok"}`, id: "audit-findings-count" }, report.findings.length),
        h("div", { class: "muted" }, t("audit_findings")))),
  ];
  if (report.findings.length) {
    out.push(h("h3", {}, t("audit_findings")),
      table(h, t, "audit-findings", ["audit_chain", "audit_seq", "audit_problem"],
        report.findings.map((f) => h("tr", { "data-id": `${f.chain}#${f.seq}` },
          h("td", {}, f.chain), h("td", {}, f.seq), h("td", { class: "bad" }, f.problem)))));
  }
  if ((report.warnings || []).length) {
    out.push(h("h3", {}, t("audit_warnings")), h("ul", { id: "audit-warnings" }, report.warnings.map((w) => h("li", { class: "warn" }, w))));
  }
  if (chains.length) {
    out.push(h("details", { class: "audit-chains" }, h("summary", {}, `${t("audit_chains")} (${chains.length})`),
      table(h, t, "audit-chain-list", ["audit_chain", "audit_entries"],
        chains.map(([chain, count]) => h("tr", { "data-id": chain }, h("td", {}, chain), h("td", { class: "num" }, count))))));
  }
  out.push(h("p", { class: "muted" }, t("audit_checked_at", { at: when(Date.now()) })));
  return out;
}

async function verifyCard(ctx) {
  const { h, t, api } = ctx;
  const result = h("div", { id: "audit-verify-result" });
  const error = h("p", { class: "error", id: "audit-verify-error" });
  const button = h("button", { type: "button", id: "audit-verify", "data-action": "verify" }, t("audit_verify"));
  const run = async () => {
    error.textContent = "";
    button.disabled = true;
    try {
      const report = await api("GET", "/api/audit/verify");
      result.replaceChildren(...verifyAnswer(h, t, report));
    } catch (err) {
      result.replaceChildren();
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener("click", run);
  await run();
  return h("div", { class: "card", id: "audit-verify-card" },
    h("div", { class: "audit-head" }, h("h2", {}, t("audit_ledger")), button),
    h("p", { class: "muted" }, t("audit_ledger_help")), error, result);
}

export async function render(root, ctx) {
  const { h, t, hasRole } = ctx;
  root.append(h("h1", {}, t("nav_audit")));
  if (hasRole("admin", "ops")) root.append(await verifyCard(ctx));
  if (hasRole("portal", "admin")) root.append(personCard(ctx));
}
