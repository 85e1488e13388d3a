// Dataset: placeholder until its page lands.
export const id = "dataset";
export const path = "/dataset/:name";
export const title = "nav_dataset";
export const menu = false;
export const roles = ["steward", "ops", "owner", "admin"];
export const strings = { en: { nav_dataset: "Dataset" }, vi: { nav_dataset: "Tập dữ liệu" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_dataset")));
}
