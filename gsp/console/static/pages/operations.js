// Operations: connectors and their tasks (state, worker, throughput, lag; pause, resume, restart), the stream
// workers' and connector workers' groups as the broker sees them. Reads GET /api/ops/connectors and
// GET /api/ops/workers (roles ops, admin) every few seconds while the page is shown; acts through Kafka
// Connect's API (PUT /connectors/{name}/pause|resume, POST /connectors/{name}/restart).
export const id = "operations";
export const path = "/operations";
export const title = "nav_operations";
export const menu = true;
export const roles = ["ops", "admin"];
export const REFRESH_MS = 5000;

export const strings = {
  en: {
    nav_operations: "Operations",
    operations_refresh: "Refreshed every {s} s; last at {at}.",
    operations_connectors: "Connectors",
    operations_no_connectors: "No connector is configured. Create one with gsp connect create or the Kafka Connect API.",
    operations_name: "Connector", operations_type: "Type", operations_state: "State", operations_target: "Target",
    operations_throughput: "Throughput", operations_lag: "Lag", operations_actions: "Actions",
    operations_task: "Task", operations_worker: "Worker", operations_trace: "Failure trace",
    operations_pause: "Pause", operations_resume: "Resume", operations_restart: "Restart",
    operations_paused: "{name}: pause requested", operations_resumed: "{name}: resume requested",
    operations_restarted: "{name}: restart requested",
    operations_per_s: "{n}/s", operations_records_total: "{n} {counted} since start",
    operations_counted_published: "published", operations_counted_written: "written",
    operations_no_figures: "no figures yet",
    operations_lag_records: "{n} records behind",
    operations_lag_unknown: "unknown: rows waiting in the source are not counted",
    operations_stream: "Stream workers", operations_connect: "Connector workers",
    operations_group: "Consumer group {group}", operations_group_state: "state {state}",
    operations_members: "Members", operations_member: "Member", operations_client: "Client",
    operations_partitions: "Partitions", operations_health: "Health",
    operations_in_group: "in the group", operations_not_in_group: "left the group",
    operations_not_reported: "not reported by the broker",
    operations_no_members: "No member in the group: no worker is running.",
    operations_topic: "Topic", operations_lag_per_partition: "Lag per partition",
    operations_no_lag: "No committed offsets yet.",
    operations_tasks: "Tasks", operations_failed: "{n} failed", operations_healthy: "healthy",
    operations_slots: "{n} slots shared among the members",
  },
  vi: {
    nav_operations: "Vận hành",
    operations_refresh: "Tự làm mới mỗi {s} giây; lần cuối lúc {at}.",
    operations_connectors: "Bộ kết nối",
    operations_no_connectors: "Chưa cấu hình bộ kết nối nào. Tạo bằng gsp connect create hoặc API Kafka Connect.",
    operations_name: "Bộ kết nối", operations_type: "Loại", operations_state: "Trạng thái", operations_target: "Mục tiêu",
    operations_throughput: "Thông lượng", operations_lag: "Độ trễ", operations_actions: "Thao tác",
    operations_task: "Tác vụ", operations_worker: "Tiến trình", operations_trace: "Vết lỗi",
    operations_pause: "Tạm dừng", operations_resume: "Tiếp tục", operations_restart: "Khởi động lại",
    operations_paused: "{name}: đã yêu cầu tạm dừng", operations_resumed: "{name}: đã yêu cầu tiếp tục",
    operations_restarted: "{name}: đã yêu cầu khởi động lại",
    operations_per_s: "{n}/giây", operations_records_total: "{n} bản ghi {counted} từ khi chạy",
    operations_counted_published: "đã phát hành", operations_counted_written: "đã ghi",
    operations_no_figures: "chưa có số liệu",
    operations_lag_records: "chậm {n} bản ghi",
    operations_lag_unknown: "không rõ: số dòng chờ ở nguồn không được đếm",
    operations_stream: "Tiến trình xử lý luồng", operations_connect: "Tiến trình kết nối",
    operations_group: "Nhóm tiêu thụ {group}", operations_group_state: "trạng thái {state}",
    operations_members: "Thành viên", operations_member: "Thành viên", operations_client: "Máy khách",
    operations_partitions: "Phân vùng", operations_health: "Tình trạng",
    operations_in_group: "trong nhóm", operations_not_in_group: "đã rời nhóm",
    operations_not_reported: "máy chủ Kafka không báo",
    operations_no_members: "Nhóm không có thành viên: không có tiến trình nào đang chạy.",
    operations_topic: "Chủ đề", operations_lag_per_partition: "Độ trễ theo phân vùng",
    operations_no_lag: "Chưa có offset nào được xác nhận.",
    operations_tasks: "Tác vụ", operations_failed: "{n} lỗi", operations_healthy: "ổn định",
    operations_slots: "{n} khe chia cho các thành viên",
  },
};

const number = (n) => Number(n).toLocaleString();

function pill(h, state) {
  return h("span", { class: `pill ${state || ""}` }, state || "?");
}

function throughput(h, t, figures) {
  if (!figures) return h("span", { class: "muted" }, t("operations_no_figures"));
  return h("span", {}, h("strong", {}, t("operations_per_s", { n: number(figures.per_s) })), " ",
    h("span", { class: "muted" }, t("operations_records_total",
      { n: number(figures.records), counted: t(`operations_counted_${figures.counted || "published"}`) })));
}

function lag(h, t, found) {
  if (!found) return h("span", { class: "muted" }, "–");
  if (found.records === null || found.records === undefined) {
    return h("span", { class: "muted", title: found.unknown || "" }, t("operations_lag_unknown"));
  }
  return h("span", { class: found.records > 0 ? "warn" : "ok" }, t("operations_lag_records", { n: number(found.records) }));
}

function connectorRows(h, t, connector, act) {
  const name = connector.name;
  const target = connector.target_state;
  const button = (action, label) => h("button", { type: "button", "data-action": action, "data-id": name,
    onclick: () => act(action, name) }, t(label));
  const rows = [h("tr", { class: "ops-connector", "data-id": name },
    h("td", {}, h("strong", {}, name)),
    h("td", {}, connector.type),
    h("td", { class: "ops-state" }, pill(h, connector.connector.state)),
    h("td", {}, target),
    h("td", {}, throughput(h, t, connector.throughput)),
    h("td", {}, lag(h, t, connector.lag)),
    h("td", { class: "ops-actions" },
      target === "STARTED" ? button("pause", "operations_pause") : button("resume", "operations_resume"),
      button("restart", "operations_restart")))];
  for (const task of connector.tasks) {
    rows.push(h("tr", { class: "ops-task", "data-id": `${name}-${task.id}` },
      h("td", { class: "ops-indent" }, `${t("operations_task")} ${task.id}`),
      h("td", { class: "muted" }, task.worker_id || "–"),
      h("td", { class: "ops-state" }, pill(h, task.state)),
      h("td", {}),
      h("td", {}, throughput(h, t, task.gsp ? { ...task.gsp } : null)),
      h("td", { colspan: 2 }, task.trace
        ? h("details", { class: "ops-trace" }, h("summary", {}, t("operations_trace")), h("pre", {}, task.trace))
        : null)));
  }
  return rows;
}

function connectorsCard(h, t, found, act, error) {
  const head = h("tr", {}, ...["operations_name", "operations_type", "operations_state", "operations_target",
    "operations_throughput", "operations_lag", "operations_actions"].map((k) => h("th", {}, t(k))));
  const body = found.connectors.length
    ? h("table", { id: "operations-connectors" }, h("thead", {}, head),
      h("tbody", {}, found.connectors.map((c) => connectorRows(h, t, c, act))))
    : h("p", { class: "muted" }, t("operations_no_connectors"));
  return h("div", { class: "card" }, h("h2", {}, t("operations_connectors")), error, body,
    found.error ? h("p", { class: "warn" }, found.error) : null);
}

function partitionsText(t, partitions) {
  if (!partitions) return t("operations_not_reported");
  return Object.entries(partitions).map(([topic, ps]) => `${topic}: ${ps.join(", ")}`).join("; ");
}

function groupHeader(h, t, group) {
  return h("p", { class: "muted" }, t("operations_group", { group: group.group }),
    group.state ? ` · ${t("operations_group_state", { state: group.state })}` : "");
}

function lagTable(h, t, lags) {
  const topics = Object.entries(lags || {});
  if (!topics.length) return h("p", { class: "muted" }, t("operations_no_lag"));
  return h("table", { class: "ops-lag" },
    h("thead", {}, h("tr", {}, h("th", {}, t("operations_topic")), h("th", {}, t("operations_lag")),
      h("th", {}, t("operations_lag_per_partition")))),
    h("tbody", {}, topics.map(([topic, found]) => h("tr", { "data-id": topic },
      h("td", {}, topic), h("td", {}, lag(h, t, found)),
      h("td", { class: "muted" }, Object.entries(found.partitions).map(([p, f]) => `${p}: ${number(f.lag)}`).join(" · "))))));
}

function streamCard(h, t, stream) {
  const members = stream.members.length
    ? h("table", { id: "operations-stream-members" },
      h("thead", {}, h("tr", {}, h("th", {}, t("operations_client")), h("th", {}, t("operations_member")),
        h("th", {}, t("operations_partitions")), h("th", {}, t("operations_health")))),
      h("tbody", {}, stream.members.map((m) => h("tr", { "data-id": m.member_id },
        h("td", {}, m.client_id || "–"), h("td", { class: "muted ops-small" }, m.member_id),
        h("td", {}, partitionsText(t, m.partitions)),
        h("td", {}, h("span", { class: "pill RUNNING" }, t("operations_in_group")))))))
    : h("p", { class: "warn" }, t("operations_no_members"));
  return h("div", { class: "card", id: "operations-stream" }, h("h2", {}, t("operations_stream")),
    groupHeader(h, t, stream), stream.error ? h("p", { class: "error" }, stream.error) : null, members,
    h("h3", {}, t("operations_lag")), lagTable(h, t, stream.lag));
}

function connectCard(h, t, connect) {
  const workers = connect.workers.length
    ? h("table", { id: "operations-connect-workers" },
      h("thead", {}, h("tr", {}, h("th", {}, t("operations_worker")), h("th", {}, t("operations_health")),
        h("th", {}, t("operations_tasks")))),
      h("tbody", {}, connect.workers.map((w) => h("tr", { "data-id": w.worker_id },
        h("td", {}, w.worker_id),
        h("td", {}, h("span", { class: `pill ${w.in_group ? "RUNNING" : "FAILED"}` },
          t(w.in_group ? "operations_in_group" : "operations_not_in_group")), " ",
          h("span", { class: w.failed ? "bad" : "ok" },
            w.failed ? t("operations_failed", { n: w.failed }) : t("operations_healthy"))),
        h("td", {}, w.tasks.map((task) => h("span", { class: `pill ${task.state} ops-task-pill` },
          `${task.connector}/${task.task}`)))))))
    : h("p", { class: "muted" }, t("operations_no_members"));
  return h("div", { class: "card", id: "operations-connect" }, h("h2", {}, t("operations_connect")),
    groupHeader(h, t, connect), h("p", { class: "muted" }, t("operations_slots", { n: connect.slots })),
    connect.error ? h("p", { class: "error" }, connect.error) : null, workers);
}

export async function render(root, ctx) {
  const { api, h, t, toast } = ctx;
  const error = h("p", { class: "error", id: "operations-error", role: "alert" });
  const stamp = h("p", { class: "muted", id: "operations-refreshed" });
  const connectorsBox = h("div", {});
  const workersBox = h("div", { class: "ops-workers" });
  let busy = false;

  async function load() {
    const [connectors, workers] = await Promise.all([api("GET", "/api/ops/connectors"), api("GET", "/api/ops/workers")]);
    connectorsBox.replaceChildren(connectorsCard(h, t, connectors, act, error));
    workersBox.replaceChildren(streamCard(h, t, workers.stream), connectCard(h, t, workers.connect));
    stamp.textContent = t("operations_refresh", { s: REFRESH_MS / 1000, at: new Date().toLocaleTimeString() });
  }

  async function act(action, name) {
    error.textContent = "";
    const path = `/connectors/${encodeURIComponent(name)}`;
    try {
      if (action === "pause") await api("PUT", `${path}/pause`);
      else if (action === "resume") await api("PUT", `${path}/resume`);
      else await api("POST", `${path}/restart?includeTasks=true&onlyFailed=false`);
      toast(t({ pause: "operations_paused", resume: "operations_resumed", restart: "operations_restarted" }[action], { name }));
      await load();
    } catch (err) {
      error.textContent = `${name}: ${err.message}`;
    }
  }

  await load();
  root.append(h("h1", {}, t("nav_operations")), stamp, connectorsBox, workersBox);
  const timer = setInterval(async () => {
    if (!root.isConnected) { clearInterval(timer); return; }  // the page was left
    if (busy) return;
    busy = true;
    try {
      await load();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      busy = false;
    }
  }, REFRESH_MS);
}
