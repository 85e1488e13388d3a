// Overview: placeholder until its page lands.
export const id = "overview";
export const path = "/overview";
export const title = "nav_overview";
export const menu = true;
export const roles = ["steward", "ops", "owner", "admin"];
export const strings = { en: { nav_overview: "Overview" }, vi: { nav_overview: "Tổng quan" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_overview")));
}
