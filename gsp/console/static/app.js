// The console's shell: sign-in, the API client, text in two languages, the DOM helper and the router.
// Every page is a module in pages/ exporting { path, title, roles, strings, render(root, ctx, params) };
// pages never build HTML from strings: h() sets text, never markup, so no value can inject a script.

import * as overview from "./pages/overview.js";
import * as dataset from "./pages/dataset.js";
import * as quarantine from "./pages/quarantine.js";
import * as review from "./pages/review.js";
import * as subscriptions from "./pages/subscriptions.js";
import * as operations from "./pages/operations.js";
import * as audit from "./pages/audit.js";

const PAGES = [overview, dataset, quarantine, review, subscriptions, operations, audit];

const STRINGS = {
  en: {
    brand: "GSP console", signout: "Sign out", signin: "Sign in", token: "Your access token",
    signin_help: "Paste the token an administrator issued you (gsp credential issue …). It stays in this browser tab only.",
    signed_in_as: "Signed in as", roles: "roles", loading: "Loading…", failed: "Failed", nothing: "Nothing here.",
    not_allowed: "Your roles do not open this page.", not_found: "No such page.", reason: "Reason", cancel: "Cancel",
    saved: "Done", retry: "Try again",
  },
  vi: {
    brand: "Bảng điều khiển GSP", signout: "Đăng xuất", signin: "Đăng nhập", token: "Mã truy cập của bạn",
    signin_help: "Dán mã truy cập do quản trị viên cấp (gsp credential issue …). Mã chỉ được giữ trong thẻ trình duyệt này.",
    signed_in_as: "Đăng nhập với", roles: "vai trò", loading: "Đang tải…", failed: "Lỗi", nothing: "Không có dữ liệu.",
    not_allowed: "Vai trò của bạn không được mở trang này.", not_found: "Không có trang này.", reason: "Lý do", cancel: "Huỷ",
    saved: "Đã xong", retry: "Thử lại",
  },
};
for (const page of PAGES) {
  for (const lang of Object.keys(STRINGS)) Object.assign(STRINGS[lang], (page.strings || {})[lang] || {});
}

let lang = localStorage.getItem("gsp.lang") || "vi";
let identity = null;

export function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// h("button", {class: "primary", onclick: f}, "Save"): an element; strings become text nodes, never markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// The platform's API with the signed-in user's token; errors carry the API's one-line message.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem("gsp.token");
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const message = (data && (data.error || data.message)) || `${response.status} ${response.statusText}`;
    if (response.status === 401 && identity) { signOut(); }  // signing in: the form shows the message
    throw new ApiError(response.status, message);
  }
  return data;
}

export function toast(message) {
  const box = document.getElementById("toast");
  const line = h("div", {}, message);
  box.append(line);
  setTimeout(() => line.remove(), 4000);
}

export function hasRole(...roles) {
  return !!identity && identity.roles.some((r) => roles.includes(r));
}

function navigate(path) { location.hash = `#${path}`; }

const ctx = { api, h, t, toast, hasRole, navigate, get identity() { return identity; } };

function signOut() {
  sessionStorage.removeItem("gsp.token");
  identity = null;
  route();
}

function signInPage(root) {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true, size: 48 });
  const error = h("p", { class: "error", id: "signin-error" });
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", {}, t("signin")), h("p", { class: "muted" }, t("signin_help")),
    h("label", {}, t("token"), input), error,
    h("p", {}, h("button", { class: "primary", type: "submit" }, t("signin"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem("gsp.token", input.value.trim());
    try {
      await loadIdentity();
      route();
    } catch (err) {
      sessionStorage.removeItem("gsp.token");
      error.textContent = err.message;
    }
  });
  root.replaceChildren(form);
  input.focus();
}

async function loadIdentity() {
  const who = await api("GET", "/api/whoami");
  identity = { agency: who.agency, key_id: who.key_id, roles: (who.grants || []).map((g) => g.role), grants: who.grants || [] };
  if (who.roles) identity.roles = who.roles;
}

function renderChrome() {
  document.documentElement.lang = lang;
  document.title = t("brand");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const nav = document.getElementById("nav");
  const current = location.hash.slice(1) || "/";
  nav.replaceChildren(...(identity ? PAGES.filter((p) => p.menu && p.roles.some((r) => identity.roles.includes(r))) : [])
    .map((p) => h("a", { href: `#${p.path}`, class: current.startsWith(p.path) ? "active" : null, id: `nav-${p.id}` }, t(p.title))));
  document.getElementById("who").textContent = identity
    ? `${t("signed_in_as")} ${identity.agency} (${t("roles")}: ${identity.roles.join(", ")})` : "";
  document.getElementById("signout").hidden = !identity;
}

function match(path) {
  for (const page of PAGES) {
    const names = [];
    const pattern = new RegExp("^" + page.path.replace(/:(\w+)/g, (_, n) => { names.push(n); return "([^/]+)"; }) + "$");
    const m = path.match(pattern);
    if (m) return { page, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return null;
}

let rendering = 0;
async function route() {
  // Every call is a turn: a page still rendering for an older hash never overwrites a newer one.
  const turn = ++rendering;
  const root = document.getElementById("main");
  renderChrome();
  if (!identity && sessionStorage.getItem("gsp.token")) {
    try { await loadIdentity(); renderChrome(); } catch { /* signInPage below */ }
    if (turn !== rendering) return;
  }
  if (!identity) { signInPage(root); return; }
  let [path, query = ""] = (location.hash.slice(1) || "/").split("?");  // #/page?key=value: params of the page
  path = path || "/";
  if (path === "/") {
    const first = PAGES.find((p) => p.menu && p.roles.some((r) => identity.roles.includes(r)));
    if (!first) { root.replaceChildren(h("p", {}, t("not_allowed"))); return; }
    path = first.path;
  }
  const found = match(path);
  if (!found) { root.replaceChildren(h("p", {}, t("not_found"))); return; }
  if (!found.page.roles.some((r) => identity.roles.includes(r))) {
    root.replaceChildren(h("p", { class: "error", id: "forbidden" }, t("not_allowed")));
    return;
  }
  root.replaceChildren(h("p", { class: "muted" }, t("loading")));
  const view = h("section", { id: `page-${found.page.id}` });
  try {
    await found.page.render(view, ctx, { ...Object.fromEntries(new URLSearchParams(query)), ...found.params });
    if (turn === rendering) { root.replaceChildren(view); root.focus({ preventScroll: true }); window.scrollTo(0, 0); }
  } catch (err) {
    if (turn === rendering) root.replaceChildren(h("p", { class: "error" }, `${t("failed")}: ${err.message}`));
  }
}

document.getElementById("lang").value = lang;
document.getElementById("lang").addEventListener("change", (event) => {
  lang = event.target.value;
  localStorage.setItem("gsp.lang", lang);
  route();
});
document.getElementById("signout").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();
