// Audit: placeholder until its page lands.
export const id = "audit";
export const path = "/audit";
export const title = "nav_audit";
export const menu = true;
export const roles = ["portal", "admin", "ops"];
export const strings = { en: { nav_audit: "Audit" }, vi: { nav_audit: "Kiểm toán" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_audit")));
}
