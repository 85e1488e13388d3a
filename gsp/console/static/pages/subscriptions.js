// Subscriptions: placeholder until its page lands.
export const id = "subscriptions";
export const path = "/subscriptions";
export const title = "nav_subscriptions";
export const menu = true;
export const roles = ["owner", "consumer", "admin", "ops"];
export const strings = { en: { nav_subscriptions: "Subscriptions" }, vi: { nav_subscriptions: "Đăng ký" } };

export async function render(root, { h, t }) {
  root.append(h("h1", {}, t("nav_subscriptions")));
}
