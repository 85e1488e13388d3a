// Review: placeholder until its page lands.
export const id = "review";
export const path = "/review";
export const title = "nav_review";
export const menu = true;
export const roles = ["steward"];
export const strings = { en: { nav_review: "Review" }, vi: { nav_review: "Rà soát" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_review")));
}
