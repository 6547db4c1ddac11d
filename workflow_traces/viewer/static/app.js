// workflow-traces viewer. Every piece of logged text goes into the page as text (text nodes,
// textContent, attribute values set through the DOM), never as HTML.
"use strict";

const STATUSES = ["succeeded", "failed", "unfinished", "cancelled", "skipped"];
const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const PAGE = 500;
const POLL_MS = 1000;

let timers = [];
function later(fn, ms) { timers.push(setTimeout(fn, ms)); }
function stopTimers() { timers.forEach(clearTimeout); timers = []; }

// -- building the page: text only -----------------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "value") { node.value = value; node.setAttribute("value", value); continue; }
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") for (const [prop, v] of Object.entries(value)) node.style.setProperty(prop, v);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return node;
}
// Control characters and bidi overrides shown as escapes, as the terminal output shows them:
// they cannot reorder or hide the text around them.
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/g;
function visible(text) {
  return String(text).replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return c === "\r" ? "\\r" : code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function badge(status) {
  return el("span", { class: `badge s-${status || "none"}`, dataset: { status: status || "" } }, status || "-");
}

// -- times: the viewer's zone shown, UTC on hover ---------------------------------------------
function when(iso, withDate = true) {
  if (!iso) return el("span", {}, "-");
  const d = new Date(iso);
  const text = withDate
    ? d.toLocaleString(undefined, { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false });
  return el("time", { datetime: d.toISOString(), title: d.toISOString().replace("T", " ").replace("Z", " UTC") }, text);
}
function seconds(s) {
  if (s === null || s === undefined) return "-";
  if (s < 0.001) return `${(s * 1e6).toFixed(0)}µs`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)}ms`;
  if (s < 120) return `${s.toFixed(2)}s`;
  if (s < 7200) return `${(s / 60).toFixed(1)}min`;
  return `${(s / 3600).toFixed(1)}h`;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// -- routing: #/ (runs) and #/run/<id>?job=&stage=&level=&text= -------------------------------
function route() {
  stopTimers();
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const main = document.getElementById("main");
  clear(main);
  document.getElementById("live").hidden = true;
  if (path.startsWith("/run/")) runPage(main, decodeURIComponent(path.slice(5)), params);
  else runsPage(main, params);
}
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
function runLink(runId, params) {
  const q = params && params.toString() ? `?${params}` : "";
  return `#/run/${encodeURIComponent(runId)}${q}`;
}

// -- the runs page ---------------------------------------------------------------------------
function runsPage(main, params) {
  const crumbs = document.getElementById("crumbs");
  clear(crumbs);
  crumbs.append("runs");
  document.title = "runs · workflow-traces";
  const state = {
    status: params.get("status") || "", workflow: params.get("workflow") || "",
    q: params.get("q") || "", roots: params.get("roots") === "1", offset: Number(params.get("offset") || 0),
  };
  const status = el("select", { id: "f-status", "aria-label": "status" },
    el("option", { value: "" }, "any status"), STATUSES.map((s) => el("option", { value: s }, s)));
  const workflow = el("select", { id: "f-workflow", "aria-label": "workflow" }, el("option", { value: "" }, "any workflow"));
  const search = el("input", { id: "f-search", type: "search", placeholder: "search run id", "aria-label": "run id" });
  const roots = el("input", { id: "f-roots", type: "checkbox" });
  const count = el("span", { class: "count" });
  const body = el("tbody");
  const prev = el("button", { id: "prev" }, "← newer");
  const next = el("button", { id: "next" }, "older →");
  status.value = state.status; search.value = state.q; roots.checked = state.roots;
  main.append(el("section", { class: "panel" },
    el("div", { class: "toolbar" }, status, workflow, search, el("label", {}, roots, "top-level runs only"), el("span", { class: "spacer" }), count),
    el("table", { class: "runs" },
      el("thead", {}, el("tr", {}, el("th", {}, "Status"), el("th", {}, "Workflow"), el("th", {}, "Run"),
        el("th", {}, "Started"), el("th", { class: "num" }, "Duration"), el("th", { class: "num" }, "Child runs"),
        el("th", { class: "num" }, "Records"))),
      body),
    el("div", { class: "pager" }, prev, next)));

  let typing;
  const reload = (resetOffset) => { if (resetOffset) state.offset = 0; load(); };
  status.addEventListener("change", () => { state.status = status.value; reload(true); });
  workflow.addEventListener("change", () => { state.workflow = workflow.value; reload(true); });
  roots.addEventListener("change", () => { state.roots = roots.checked; reload(true); });
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.q = search.value.trim(); reload(true); }, 250); });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - 50); load(); });
  next.addEventListener("click", () => { state.offset += 50; load(); });

  async function load() {
    const q = new URLSearchParams({ limit: "50", offset: String(state.offset) });
    if (state.status) q.set("status", state.status);
    if (state.workflow) q.set("workflow", state.workflow);
    if (state.q) q.set("q", state.q);
    if (state.roots) q.set("roots", "1");
    history.replaceState(null, "", `#/?${q}`);
    let data;
    try { data = await api(`/api/runs?${q}`); } catch (err) { clear(body); body.append(el("tr", {}, el("td", { colspan: 7, class: "error" }, String(err.message)))); return; }
    const chosen = workflow.value || state.workflow;
    clear(workflow);
    workflow.append(el("option", { value: "" }, "any workflow"), ...data.workflows.map((w) => el("option", { value: w }, w)));
    workflow.value = chosen;
    clear(body);
    if (!data.runs.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No runs match.")));
    for (const r of data.runs) {
      body.append(el("tr", { class: "run-row", dataset: { runId: r.run_id } },
        el("td", {}, badge(r.status)),
        el("td", {}, r.workflow_name || "-"),
        el("td", {}, el("a", { href: runLink(r.run_id), class: "mono" }, r.run_id),
          r.parent_run_id ? el("span", { class: "child-of" }, "child of ", el("a", { href: runLink(r.parent_run_id), class: "mono" }, r.parent_run_id)) : null),
        el("td", {}, when(r.started)),
        el("td", { class: "num" }, seconds(r.duration)),
        el("td", { class: "num" }, String(r.child_count || 0)),
        el("td", { class: "num" }, String(r.record_count))));
    }
    count.textContent = data.runs.length ? `${state.offset + 1}–${state.offset + data.runs.length}` : "";
    prev.disabled = state.offset === 0;
    next.disabled = !data.more;
    if (data.runs.some((r) => r.status === "unfinished")) later(load, 3000);
  }
  load();
}

// -- the run page ----------------------------------------------------------------------------
function flatten(node, depth, runId, rows) {
  rows.push({ node, depth, runId });
  const inner = node.kind === "run" ? node.run_id : runId;
  for (const child of node.children) flatten(child, depth + 1, inner, rows);
  return rows;
}
function jobOf(rows, index) {
  for (let i = index - 1; i >= 0; i--) if (rows[i].depth < rows[index].depth && rows[i].node.kind === "job") return rows[i].node.name;
  return null;
}

function runPage(main, runId, params) {
  const crumbs = document.getElementById("crumbs");
  clear(crumbs);
  crumbs.append(el("a", { href: "#/" }, "runs"), " / ", runId);
  document.title = `${runId} · workflow-traces`;
  const filters = { level: params.get("level") || "", job: params.get("job") || "", stage: params.get("stage") || "", text: params.get("text") || "" };
  const head = el("section", { class: "panel", id: "run-head" });
  const timeline = el("div", { class: "timeline", id: "timeline" });
  const logs = el("div", { class: "logs", id: "logs" });
  const more = el("div", { class: "more", id: "logs-more" });
  const chips = el("span", { id: "chips" });
  const shown = el("span", { class: "count", id: "logs-count" });
  const level = el("select", { id: "f-level", "aria-label": "level" }, el("option", { value: "" }, "every level"),
    LEVELS.map((l) => el("option", { value: l }, `${l} and above`)));
  const text = el("input", { id: "f-text", type: "search", placeholder: "search messages", "aria-label": "text" });
  const jobSelect = el("select", { id: "f-job", "aria-label": "job" });
  const stageSelect = el("select", { id: "f-stage", "aria-label": "stage" });
  level.value = filters.level; text.value = filters.text;
  main.append(head,
    el("section", { class: "panel" }, el("h2", {}, "Timeline"), timeline),
    el("section", { class: "panel" }, el("h2", {}, "Logs"),
      el("div", { class: "toolbar" }, level, jobSelect, stageSelect, text, chips, el("span", { class: "spacer" }), shown),
      logs, more));

  let tree = null, summary = null, cursor = null, hasMore = false, loading = false, generation = 0, count = 0;

  function setFilters(change) {
    Object.assign(filters, change);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    history.replaceState(null, "", runLink(runId, q));
    renderChips();
    renderChoices();
    renderTimeline();
    resetLogs();
  }
  level.addEventListener("change", () => setFilters({ level: level.value }));
  jobSelect.addEventListener("change", () => setFilters({ job: jobSelect.value, stage: "" }));
  stageSelect.addEventListener("change", () => setFilters({ stage: stageSelect.value }));

  // The job and stage choices: this run's own (not its child runs'), in the tree's order.
  function renderChoices() {
    const jobs = [], stages = [];
    const walk = (node, job) => {
      if (node.kind === "run") return;
      if (node.kind === "job" && !jobs.includes(node.name)) jobs.push(node.name);
      const inJob = node.kind === "job" ? node.name : job;
      if (node.kind === "stage" && (!filters.job || inJob === filters.job) && !stages.includes(node.name)) stages.push(node.name);
      node.children.forEach((c) => walk(c, inJob));
    };
    if (tree) walk(tree, null);
    for (const [select, names, value, none] of [[jobSelect, jobs, filters.job, "every job"], [stageSelect, stages, filters.stage, "every stage"]]) {
      clear(select);
      select.append(el("option", { value: "" }, none), ...names.map((n) => el("option", { value: n }, n)));
      if (value && !names.includes(value)) select.append(el("option", { value }, value));
      select.value = value;
    }
  }
  let typing;
  text.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => setFilters({ text: text.value.trim() }), 250); });

  function renderChips() {
    clear(chips);
    for (const key of ["job", "stage"]) {
      if (!filters[key]) continue;
      chips.append(el("span", { class: "chip", dataset: { filter: key } }, `${key}: `, filters[key],
        el("button", { title: `clear the ${key} filter`, "aria-label": `clear ${key}`, onclick: () => setFilters(key === "job" ? { job: "", stage: "" } : { stage: "" }) }, "×")));
    }
  }

  function renderHead() {
    clear(head);
    const s = summary;
    head.append(el("div", { class: "runhead" },
      el("h1", {}, s.workflow_name || s.run_id), badge(s.status),
      el("div", { class: "facts" },
        el("span", {}, "run ", el("b", { class: "mono" }, s.run_id)),
        s.parent_run_id ? el("span", {}, "child of ", el("a", { href: runLink(s.parent_run_id), class: "mono" }, s.parent_run_id)) : null,
        el("span", {}, "started ", el("b", {}, when(s.started))),
        el("span", {}, "duration ", el("b", {}, s.status === "unfinished" ? "running" : seconds(s.duration))),
        el("span", {}, "records ", el("b", {}, String(s.record_count))))));
  }

  function renderTimeline() {
    clear(timeline);
    if (!tree) return;
    // Offsets and durations come from the server in seconds (to the microsecond); only an
    // unfinished node's length is measured here, against the clock: its bar grows.
    const elapsed = tree.started ? (Date.now() - Date.parse(tree.started)) / 1000 : 0;
    const rows = flatten(tree, 0, runId, []);
    const startOf = (n) => n.offset || 0;
    const lengthOf = (n) => n.status === "unfinished" ? Math.max(elapsed - startOf(n), 0) : (n.duration || 0);
    let span = 0;
    for (const { node } of rows) if (node.started) span = Math.max(span, startOf(node) + lengthOf(node));
    span = span > 0 ? span : 0.001;
    // Round steps (1, 2 or 5 of a power of ten), about five across the span.
    const raw = span / 5, power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw) || raw;
    const ticks = el("div", { class: "ticks" });
    for (let t = 0; t <= span * 1.0001; t += step) ticks.append(el("span", { class: "tick", style: { left: `${(100 * t) / span}%` } }, t === 0 ? "0" : `+${seconds(t)}`));
    timeline.append(el("div", { class: "tl-axis" }, el("span", {}), ticks, el("span", {})));
    rows.forEach(({ node, depth, runId: owner }, index) => {
      const start = startOf(node), length = node.started ? lengthOf(node) : 0;
      const left = (100 * start) / span, width = Math.max((100 * length) / span, 0.25);
      const duration = node.status === "unfinished" ? length : node.duration;
      const job = node.kind === "stage" ? jobOf(rows, index) : node.kind === "job" ? node.name : null;
      const selected = owner === runId && ((node.kind === "job" && filters.job === node.name && !filters.stage) ||
        (node.kind === "stage" && filters.stage === node.name && (filters.job || null) === (job || null)));
      const tip = `${node.kind} ${node.name}${node.attempt > 1 ? ` (attempt ${node.attempt})` : ""}: ${node.status || "-"}, ${seconds(duration)} at +${seconds(start)}${node.error ? `\n${node.error}` : ""}`;
      const row = el("div", {
        class: `tl-row k-${node.kind}${selected ? " selected" : ""}`, role: "button", tabindex: "0", title: tip,
        dataset: { kind: node.kind, name: node.name, status: node.status || "", attempt: String(node.attempt), run: owner },
      },
        el("div", { class: "tl-label", style: { "padding-left": `${14 + depth * 16}px` } }, el("span", { class: "kind" }, node.kind), node.name,
          node.attempt > 1 || rows.some((r) => r !== rows[index] && r.node.kind === node.kind && r.node.name === node.name && r.node.attempt > 1 && r.depth === depth)
            ? el("span", { class: "attempt" }, `attempt ${node.attempt}`) : null),
        el("div", { class: "tl-track" }, el("div", { class: `bar s-${node.status || "none"}`, style: { left: `${left}%`, width: `${width}%` } })),
        el("div", { class: "tl-dur" }, seconds(duration)));
      const choose = () => {
        if (node.kind === "run") { location.hash = runLink(node.run_id); return; }
        if (owner !== runId) {
          const q = new URLSearchParams();
          if (job) q.set("job", job);
          if (node.kind === "stage") q.set("stage", node.name);
          location.hash = runLink(owner, q);
          return;
        }
        if (node.kind === "workflow") setFilters({ job: "", stage: "" });
        else if (node.kind === "job") setFilters({ job: node.name, stage: "" });
        else setFilters({ job: job || "", stage: node.name });
      };
      row.addEventListener("click", choose);
      row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } });
      timeline.append(row);
    });
  }

  function logRow(r) {
    const where = [r.job_name, r.stage_name].filter(Boolean).join(" / ");
    const row = el("div", { class: `log-row l-${r.level}`, dataset: { level: r.level, id: r.record_id, job: r.job_name || "", stage: r.stage_name || "" } },
      el("span", { class: "t" }, when(r.timestamp, false)),
      el("span", { class: "lv" }, r.level),
      el("span", { class: "where", title: where }, where),
      el("span", { class: "msg" }, r.message));
    if (r.exc_traceback) row.append(el("pre", { class: "tb" }, r.exc_traceback.replace(/\n$/, "")));
    else if (r.exc_type) row.append(el("pre", { class: "tb" }, `${r.exc_type}: ${r.exc_message || ""}`));
    if (r.extras && Object.keys(r.extras).length) {
      const pairs = Object.entries(r.extras).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("  ");
      row.append(el("div", { class: "extras", title: pairs }, pairs));
    }
    return row;
  }

  function query() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    if (cursor) q.set("after", cursor);
    return q;
  }
  async function loadLogs() {
    if (loading) return;
    loading = true;
    const mine = generation;
    try {
      const data = await api(`/api/runs/${encodeURIComponent(runId)}/records?${query()}`);
      if (mine !== generation) return;
      for (const r of data.records) logs.append(logRow(r));
      count += data.records.length;
      cursor = data.cursor;
      hasMore = data.more;
      shown.textContent = `${count}${hasMore ? "+" : ""} records`;
      more.textContent = hasMore ? "scroll for more…" : (summary && summary.status === "unfinished" ? "waiting for new records…" : (count ? "end of the run's logs" : "no records match"));
    } catch (err) {
      more.textContent = String(err.message);
    } finally {
      loading = false;
    }
    // Another page only while the pane is not filled yet; after that, as it is scrolled.
    if (hasMore && logs.scrollHeight <= logs.clientHeight + 300) loadLogs();
  }
  function resetLogs() {
    generation++;
    loading = false;
    cursor = null; hasMore = false; count = 0;
    clear(logs);
    loadLogs();
  }
  logs.addEventListener("scroll", () => {
    if (hasMore && logs.scrollTop + logs.clientHeight > logs.scrollHeight - 300) loadLogs();
  });

  async function refresh(first) {
    try {
      const data = await api(`/api/runs/${encodeURIComponent(runId)}`);
      summary = data.run; tree = data.tree;
    } catch (err) {
      clear(head); head.append(el("div", { class: "error" }, String(err.message)));
      return;
    }
    renderHead();
    renderTimeline();
    if (first) { renderChips(); resetLogs(); }
    if (first || summary.status === "unfinished") renderChoices();
    const live = summary.status === "unfinished";
    document.getElementById("live").hidden = !live;
    if (live) {
      later(async () => {
        if (!hasMore && !loading) await loadLogs();  // new records after the cursor
        refresh(false);
      }, POLL_MS);
    } else if (!first && !hasMore) {
      loadLogs();  // the records written just before the end
    }
  }
  refresh(true);
}
