// Quarantine: placeholder until its page lands.
export const id = "quarantine";
export const path = "/quarantine";
export const title = "nav_quarantine";
export const menu = true;
export const roles = ["steward"];
export const strings = { en: { nav_quarantine: "Quarantine" }, vi: { nav_quarantine: "Cách ly" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_quarantine")));
}
