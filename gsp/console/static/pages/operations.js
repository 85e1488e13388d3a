// Operations: placeholder until its page lands.
export const id = "operations";
export const path = "/operations";
export const title = "nav_operations";
export const menu = true;
export const roles = ["ops", "admin"];
export const strings = { en: { nav_operations: "Operations" }, vi: { nav_operations: "Vận hành" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_operations")));
}
