// The sentra-lang dashboard. Live: agents, events, inspector and risk chart, starting from the
// first snapshot and following /v1/events/stream from its head. When reads are open the server
// renders the snapshot into the page; when it has a read token the page carries none, and the
// script asks for the token and fetches the snapshot from /v1/dashboard/snapshot. Every read
// sends the token. Impact: what the gate prevented, from GET /v1/impact (docs/server.md).
// Reviews (a policy with `review` rules): the pending tickets, from GET /v1/reviews, reloaded
// when the stream brings a review decision or step; approve and deny ask for the operator token.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const MAX_EVENTS = 1000;
  const SHOWN_EVENTS = 300;
  const MAX_BUCKETS = 120;
  const TOKEN_KEY = "sentra-read-token";
  const state = { agents: new Map(), events: [], selectedAgent: null, selectedSeq: null,
                  lastSeq: 0, threshold: config.risk_threshold, strikes: config.strikes,
                  decisions: 0, blocked: 0, agentsAfter: null };
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  // Control characters, characters drawn as nothing, line breaks and bidi controls in what agents send
  // are shown as marked code points, never as themselves: the class is the server's
  // (config.invisible, the one every command's output escapes), so the first paint and these
  // rows mark the same characters.
  const HIDDEN = new RegExp(`([${config.invisible}])`, "u");
  const codePoint = (c) => "U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  // `text` as nodes to append: its hidden characters as <span class="ctl">U+XXXX</span>
  const visible = (text) => text.split(HIDDEN).filter((part) => part !== "")
    .map((part) => HIDDEN.test(part) ? el("span", { class: "ctl" }, codePoint(part)) : part);
  // the same for plain text (a tooltip, a prompt): hidden characters as [U+XXXX]
  const plain = (text) => String(text).split(HIDDEN).map((part) => HIDDEN.test(part) ? `[${codePoint(part)}]` : part).join("");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") { if (value) node.className = value; } else node.setAttribute(key, key === "title" ? plain(value) : value);
    }
    for (const child of children) node.append(...(child instanceof Node ? [child] : visible(String(child))));
    return node;
  }

  // multi-line text (a <pre>): its line breaks kept, every other hidden character marked
  const lines = (text) => text.split("\n").flatMap((line, i) => i ? [document.createTextNode("\n"), ...visible(line)] : visible(line));

  function shape(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---------------------------------------------------------------------------------- reads

  // The read token, when the server has one (config.read_token): asked for once per browser
  // session, and again when the server refused the one kept (`refused`).
  function readToken(refused) {
    if (!config.read_token) return null;
    let token = sessionStorage.getItem(TOKEN_KEY);
    if (!token || token === refused) {
      token = window.prompt(refused ? "The server refused that read token. Read token for this server's events and agents:"
        : "Read token for this server's events and agents:");
      if (!token) { sessionStorage.removeItem(TOKEN_KEY); throw new Error("no read token given (reload the page to give it)"); }
      sessionStorage.setItem(TOKEN_KEY, token);
    }
    return token;
  }

  // GET `path` with the read token; while the server refuses the token (401), ask for another.
  async function read(path) {
    for (let refused = null; ;) {
      const token = readToken(refused);
      const response = await fetch(path, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
      if (response.status !== 401 || token === null) return response;
      refused = token;
    }
  }

  async function answer(response) {
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.detail;
      throw new Error(typeof detail === "string" ? detail
        : Array.isArray(detail) && detail.every((d) => typeof d.msg === "string") ? detail.map((d) => d.msg).join("; ")
          : response.status + " " + JSON.stringify(detail));
    }
    return body;
  }

  const api = async (path) => answer(await read(path));

  // Exports: a link cannot send the token, so the file is fetched with it and saved from a Blob.
  async function save(link) {
    try {
      const response = await read(link.href);
      if (!response.ok) await answer(response);
      const url = URL.createObjectURL(await response.blob());
      const saving = el("a", { href: url, download: link.getAttribute("download") || "" });
      document.body.append(saving);
      saving.click();
      saving.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      $("impact-status").textContent = "export failed: " + error.message;
    }
  }

  // ------------------------------------------------------------------------------ live state

  // an agent's own threshold and strikes (its group's, under a policy with groups) stay with it
  function fresh(id) {
    const known = state.agents.get(id) || {};
    return { agent_id: id, cumulative_risk: 0, blocked_attempts: 0, status: "active",
      risk_threshold: known.risk_threshold, strikes: known.strikes, group: known.group };
  }

  function apply(record, counted) {
    state.lastSeq = Math.max(state.lastSeq, record.seq);
    if (record.kind === "decision" || (record.kind === "review" && record.decision)) {
      const d = record.decision;
      const known = state.agents.get(record.agent) || {};
      state.agents.set(record.agent, { agent_id: record.agent, cumulative_risk: d.cumulative_risk,
        blocked_attempts: d.blocked_attempts, status: d.status,
        risk_threshold: (record.server && record.server.risk_threshold) || known.risk_threshold,
        strikes: (record.server && record.server.strikes) || known.strikes,
        group: d.group !== undefined ? d.group : known.group });   // limit counts: as the agents list reads them
      if (counted) {   // as the Impact view counts: held actions are decisions, verdicts too
        state.decisions += 1; if (!d.allowed && d.outcome !== "review") state.blocked += 1;
      }
    } else if (record.kind === "reset") {
      const ids = record.agent === null ? [...state.agents.keys()] : [record.agent];
      for (const id of ids) state.agents.set(id, fresh(id));
    } else if (record.kind === "group") {   // a live assignment: the agent's view says what it changes
      if (counted && state.agents.has(record.agent)) refreshAgent(record.agent);
    } else if (record.kind === "policy_load") {
      $("policy-name").textContent = `${record.policy.name} ${record.policy.version}`;
      $("policy-hash").textContent = record.policy_hash.slice(0, 19) + "…";
      $("policy-hash").title = record.policy_hash;
    }
    state.events.push(record);
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
  }

  // One agent's state as the server reads it now (its group, that group's threshold, strikes and
  // limits), after an operator's group assignment.
  async function refreshAgent(id) {
    try {
      const agent = await api(`/v1/agents/${encodeURIComponent(id)}`);
      if (agent.known) { state.agents.set(id, agent); render(); }
    } catch (error) { /* the next decision of the agent brings its state */ }
  }

  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderNow(); });
  }

  function renderNow() {
    renderCounts(); renderAgents(); renderEvents();
    if (!$("view-live").hidden) renderChart();
  }

  function renderCounts() {
    $("count-events").textContent = state.decisions;
    $("count-blocked").textContent = state.blocked;
    if (state.agentsAfter !== null) return;   // agents still loading: the snapshot's counts stand
    const agents = [...state.agents.values()];
    const down = agents.filter((a) => a.status === "shut_down").length;
    $("count-agents").textContent = agents.length;
    $("count-active").textContent = agents.length - down;
    $("count-shutdown").textContent = down;
  }

  function riskBar(risk, threshold) {
    const share = Math.min(100, (100 * risk) / threshold);
    const level = share >= 90 ? "bad" : share >= 60 ? "warn" : "";
    const bar = el("span", { class: "bar", title: `${risk}/${threshold}` }, el("i", { class: level }));
    bar.firstChild.style.width = share + "%";
    return el("span", {}, bar, ` ${risk}/${threshold}`);
  }

  // an agent id or action type: whatever a client sent, so a long one wraps inside its cell
  const idCell = (text) => el("td", {}, el("span", { class: "id" }, text));
  // an agent's id, with its group under a policy with groups
  const agentCell = (agent) => {
    const cell = idCell(agent.agent_id === "" ? "(empty id)" : agent.agent_id);
    if (agent.group) cell.append(" ", el("span", { class: "group" }, agent.group));
    return cell;
  };
  // what a row's tooltip says of the agent's rate limits: each one's count now
  const limitsTitle = (limits) => limits.map((l) => `${l.limit} for ${l.for}: ${l.count}`).join("; ");

  function renderAgents() {
    const body = $("agents").tBodies[0];
    const rows = [...state.agents.values()].sort((a, b) =>
      (b.status === "shut_down") - (a.status === "shut_down") || (a.agent_id < b.agent_id ? -1 : a.agent_id > b.agent_id ? 1 : 0));
    body.replaceChildren(...rows.map((agent) => {
      const reset = el("button", { type: "button", class: "reset", title: "reset this agent (operator token)" }, "reset");
      const buttons = config.groups.length ? [reset, el("button", { type: "button", class: "assign-group", title: "assign this agent to a group (operator token)" }, "group")] : [reset];
      const row = el("tr", { "data-agent": agent.agent_id, ...(agent.limits && agent.limits.length ? { title: limitsTitle(agent.limits) } : {}), class: [agent.status === "shut_down" ? "shut-down" : "", agent.agent_id === state.selectedAgent ? "selected" : ""].join(" ").trim() },
        agentCell(agent), el("td", {}, riskBar(agent.cumulative_risk, agent.risk_threshold || state.threshold)),
        el("td", {}, `${agent.blocked_attempts}/${agent.strikes || state.strikes}`),
        el("td", { class: "status" }, agent.status === "shut_down" ? "shut down" : "active"), el("td", {}, ...buttons));
      return row;
    }));
  }

  function visibleEvents() {
    const agent = $("filter-agent").value.trim();
    const decision = $("filter-decision").value;
    return state.events.filter((r) => {
      if (r.kind === "policy_load") return decision === "" && !agent;
      if (agent && r.agent !== agent) return false;
      if (decision === "reset") return r.kind === "reset";
      if (decision === "review") return r.kind === "review";
      if (decision === "group") return r.kind === "group";
      if (decision) return r.kind === "decision" && r.decision.label === decision;
      return true;
    }).slice(-SHOWN_EVENTS).reverse();
  }

  function eventCells(r) {
    if (r.kind === "decision") {
      return [idCell(r.agent), idCell(r.action), el("span", { class: "d-" + r.decision.label.split(" ")[0] }, r.decision.label),
        r.decision.rule_id, `${r.decision.attempted_risk} → ${r.decision.cumulative_risk}/${(r.server && r.server.risk_threshold) || state.threshold}`];
    }
    if (r.kind === "reset") return [idCell(r.agent === null ? "(all)" : r.agent), "reset", `by ${r.operator}`, "", ""];
    if (r.kind === "review") return [idCell(r.agent), idCell(r.action), `review ${r.verdict}` + (r.operator ? ` by ${r.operator}` : ""), r.rule_id || "", ""];
    if (r.kind === "group") return [idCell(r.agent), "group", r.group === null ? `assignment cleared by ${r.operator}` : `assigned to ${r.group} by ${r.operator}`, "", ""];
    return [idCell(""), "policy load", `${r.policy.name} ${r.policy.version}`, "", ""];
  }

  function renderEvents() {
    const body = $("events").tBodies[0];
    body.replaceChildren(...visibleEvents().map((r) => el("tr", { "data-seq": r.seq, class: r.seq === state.selectedSeq ? "selected" : "" },
      el("td", {}, r.seq), el("td", {}, r.time.slice(11, 19)),
      ...eventCells(r).map((c) => c instanceof HTMLTableCellElement ? c : el("td", {}, c)))));
  }

  async function inspect(seq) {
    const panel = $("inspector");
    panel.replaceChildren(el("h2", {}, `Inspector · seq ${seq}`), el("p", { class: "muted" }, "loading…"));
    if (panel.getBoundingClientRect().top > innerHeight) panel.scrollIntoView({ block: "nearest" });
    let record;
    try { record = await api(`/v1/events/${seq}`); } catch (error) {
      panel.replaceChildren(el("h2", {}, `Inspector · seq ${seq}`), el("p", {}, `cannot load the record: ${error.message}`));
      return;
    }
    if (state.selectedSeq !== seq) return;
    const parts = [el("h2", {}, `Inspector · seq ${seq}`)];
    if (record.kind === "decision") {
      const d = record.decision;
      parts.push(el("p", {}, el("b", { class: "d-" + d.label.split(" ")[0] }, d.label), ` ${d.rule_id}`, d.threat ? ` · ${d.threat}` : ""));
      parts.push(el("p", {}, d.reason));
      parts.push(el("h3", {}, "Explanation"), el("pre", { id: "inspector-explanation" }, ...lines(record.explanation.split(" | ").join("\n"))));
      parts.push(el("h3", {}, "Trace"), el("ol", { id: "inspector-trace" }, ...record.event.event_trace.map((line) => el("li", {}, line))));
      parts.push(el("h3", {}, "Input"), el("pre", {}, ...lines(JSON.stringify(record.input, null, 2))));
    } else {
      parts.push(el("pre", {}, ...lines(JSON.stringify(record, null, 2))));
    }
    parts.push(el("p", { class: "muted" }, `${record.time} · policy ${record.policy_hash ? record.policy_hash.slice(0, 19) : ""}… · hash ${record.hash.slice(0, 19)}…`));
    panel.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------------------------- charts

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = 10 ** Math.floor(Math.log10(raw || 1));
    const fraction = raw / power;
    return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  }

  const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

  // Axes in the svg's own pixels: y ticks from 0 to a rounded top, x labels at chosen positions.
  function frame(svg, top, xLabel, yLabel) {
    const width = Math.max(200, svg.clientWidth), height = Math.max(120, svg.clientHeight);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const box = { left: 56, right: width - 14, top: 20, bottom: height - 40 };
    const step = niceStep(top, 4);
    const max = Math.max(step, Math.ceil(top / step) * step);
    const y = (value) => box.bottom - ((box.bottom - box.top) * value) / max;
    const axes = shape("g", { class: "axes" });
    for (let value = 0; value <= max + step / 2; value += step) {
      axes.append(shape("line", { x1: box.left, x2: box.right, y1: y(value), y2: y(value), class: "grid-line" }));
      axes.append(shape("text", { x: box.left - 6, y: y(value) + 4, "text-anchor": "end", class: "tick y-tick" }, NUMBER.format(value)));
    }
    axes.append(shape("line", { x1: box.left, x2: box.left, y1: box.top, y2: box.bottom, class: "axis y-axis" }));
    axes.append(shape("line", { x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom, class: "axis x-axis" }));
    axes.append(shape("text", { x: (box.left + box.right) / 2, y: height - 6, "text-anchor": "middle", class: "axis-label x-label" }, xLabel));
    axes.append(shape("text", { x: 12, y: (box.top + box.bottom) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(box.top + box.bottom) / 2})`, class: "axis-label y-label" }, yLabel));
    svg.append(axes);
    return { box, y, svg };
  }

  // Label at most `room` of the n positions, evenly, always the first and the last.
  function xTicks(chart, count, xOf, labelOf) {
    const room = Math.max(2, Math.floor((chart.box.right - chart.box.left) / 90));
    const every = Math.max(1, Math.ceil(count / room));
    for (let i = 0; i < count; i += 1) {
      if (i % every !== 0 && i !== count - 1) continue;
      if (i !== count - 1 && count - 1 - i < every) continue;
      const x = xOf(i);
      chart.svg.append(shape("line", { x1: x, x2: x, y1: chart.box.bottom, y2: chart.box.bottom + 4, class: "axis" }));
      chart.svg.append(shape("text", { x, y: chart.box.bottom + 16, "text-anchor": "middle", class: "tick x-tick" }, labelOf(i)));
    }
  }

  function defaultAgent() {
    for (let i = state.events.length - 1; i >= 0; i -= 1) if (state.events[i].kind === "decision") return state.events[i].agent;
    return null;
  }

  function renderChart() {
    const svg = $("chart");
    const agent = state.selectedAgent ?? defaultAgent();
    const name = agent === "" ? "(empty id)" : agent;
    $("chart-agent").replaceChildren(...visible(agent === null ? "(no decisions yet)" : state.selectedAgent === null ? `${name} (latest; select an agent)` : name));
    const points = [];
    for (const r of state.events) {
      if (r.kind === "decision" && r.agent === agent) points.push({ seq: r.seq, risk: r.decision.cumulative_risk, down: r.decision.status === "shut_down" });
      else if (r.kind === "reset" && (r.agent === null || r.agent === agent) && points.length) points.push({ seq: r.seq, risk: 0 });
    }
    const threshold = (state.agents.get(agent) || {}).risk_threshold || state.threshold;   // its group's, if any
    const chart = frame(svg, Math.max(threshold, ...points.map((p) => p.risk)), "audit sequence number", "cumulative risk");
    const { box, y } = chart;
    const x = (i) => box.left + 10 + ((box.right - box.left - 20) * i) / Math.max(1, points.length - 1);
    const limit = y(threshold);
    svg.append(shape("line", { x1: box.left, x2: box.right, y1: limit, y2: limit, class: "threshold" }));
    svg.append(shape("text", { x: box.right - 4, y: limit - 4, "text-anchor": "end", class: "threshold-label" }, `threshold ${threshold}`));
    if (!points.length) return;
    xTicks(chart, points.length, x, (i) => `#${points[i].seq}`);
    svg.append(shape("polyline", { points: points.map((p, i) => `${x(i)},${y(p.risk)}`).join(" "), class: "series", id: "chart-line" }));
    points.forEach((p, i) => svg.append(shape("circle", { cx: x(i), cy: y(p.risk), r: 3, class: p.down ? "point down" : "point" })));
  }

  // ----------------------------------------------------------------------------------- impact

  const impact = { report: null, timer: null, loading: false };

  function impactQuery(extra) {
    const params = new URLSearchParams();
    params.set("field", $("impact-field").value.trim() || "amount");
    params.set("bucket", $("impact-bucket").value);
    if ($("impact-since").value) params.set("since", $("impact-since").value);
    if ($("impact-until").value) params.set("until", $("impact-until").value);
    for (const [key, value] of Object.entries(extra)) params.set(key, value);
    return "/v1/impact?" + params.toString();
  }

  function setCount(id, value) { $(id).dataset.value = value; $(id).textContent = NUMBER.format(value); }

  async function loadImpact() {
    if (impact.loading) return;
    impact.loading = true;
    const status = $("impact-status");
    status.textContent = "loading…";
    try {
      impact.report = await api(impactQuery({ format: "json" }));
      status.textContent = `as of audit seq ${impact.report.last_seq}`;
      renderImpact();
    } catch (error) {
      status.textContent = "error: " + error.message;
    } finally {
      impact.loading = false;
    }
  }

  function renderImpact() {
    const report = impact.report;
    if (report === null) return;
    const { totals, settings } = report;
    setCount("impact-prevented", totals.prevented);
    setCount("impact-blocked", totals.blocked);
    setCount("impact-shut-down", totals.shut_down);
    setCount("impact-exposure", totals.exposure_prevented);
    setCount("impact-agents", totals.agents_shut_down);
    setCount("impact-held", totals.held);
    $("impact-exposure-label").textContent = `exposure prevented (${settings.field}, ${totals.exposure_actions} actions)` +
      (settings.field_declared ? "" : " · not a field of the policy");
    $("impact-json").href = impactQuery({ format: "json" });
    for (const link of document.querySelectorAll("#view-impact a.csv")) {
      link.href = impactQuery({ format: "csv", table: link.dataset.table });
      link.setAttribute("download", `sentra-impact-${link.dataset.table}-${settings.bucket}.csv`);
    }
    const rows = (id, items, cells) => $(id).tBodies[0].replaceChildren(...items.map((item) => el("tr", {}, ...cells(item).map((c) => c instanceof HTMLTableCellElement ? c : el("td", {}, c)))));
    rows("impact-threats", report.by_threat, (t) => [t.threat ?? "(none)", NUMBER.format(t.blocked), NUMBER.format(t.shut_down), NUMBER.format(t.exposure_prevented)]);
    rows("impact-rules", report.by_rule, (r) => [r.rule_id, NUMBER.format(r.blocked), NUMBER.format(r.shut_down), NUMBER.format(r.exposure_prevented), NUMBER.format(r.held)]);
    rows("impact-agents-table", report.agents_shut_down, (a) => [idCell(a.agent === "" ? "(empty id)" : a.agent), a.shutdowns, a.last_shutdown.slice(0, 19).replace("T", " "), a.last_rule_id, a.denied_after]);
    const buckets = filledBuckets(report.over_time, settings.bucket);
    barChart($("impact-chart-actions"), buckets, settings.bucket, [["blocked", "blocked"], ["shut_down", "shut down"]], "actions prevented");
    barChart($("impact-chart-exposure"), buckets, settings.bucket, [["exposure_prevented", "exposure"]], `${settings.field} prevented`);
  }

  function nextBucket(start, bucket) {
    const next = new Date(start);
    if (bucket === "hour") next.setUTCHours(next.getUTCHours() + 1);
    else if (bucket === "day") next.setUTCDate(next.getUTCDate() + 1);
    else if (bucket === "week") next.setUTCDate(next.getUTCDate() + 7);
    else next.setUTCMonth(next.getUTCMonth() + 1);
    return next.toISOString().slice(0, 19) + "Z";
  }

  // The newest MAX_BUCKETS buckets up to the last one with data, empty ones filled with zeros.
  function filledBuckets(items, bucket) {
    if (!items.length) return [];
    const known = new Map(items.map((item) => [item.bucket_start, item]));
    const filled = [];
    for (let start = items[0].bucket_start; start <= items[items.length - 1].bucket_start; start = nextBucket(start, bucket)) {
      filled.push(known.get(start) ?? { bucket_start: start, blocked: 0, shut_down: 0, exposure_prevented: 0 });
      if (filled.length > MAX_BUCKETS) filled.shift();
    }
    return filled;
  }

  function bucketLabel(start, bucket) {
    if (bucket === "hour") return start.slice(5, 10) + " " + start.slice(11, 16);
    if (bucket === "month") return start.slice(0, 7);
    return start.slice(0, 10);
  }

  function barChart(svg, buckets, bucket, series, yLabel) {
    const top = Math.max(1, ...buckets.map((b) => series.reduce((sum, [key]) => sum + b[key], 0)));
    const chart = frame(svg, top, `${bucket} (UTC)`, yLabel);
    const { box, y } = chart;
    if (!buckets.length) {
      svg.append(shape("text", { x: (box.left + box.right) / 2, y: (box.top + box.bottom) / 2, "text-anchor": "middle", class: "empty" }, "nothing prevented yet"));
      return;
    }
    const slot = (box.right - box.left) / buckets.length;
    const x = (i) => box.left + slot * (i + 0.5);
    buckets.forEach((b, i) => {
      let base = 0;
      for (const [key, label] of series) {
        if (b[key] <= 0) continue;
        const width = Math.min(slot * 0.7, 48);
        const bar = shape("rect", { x: x(i) - width / 2, width, y: y(base + b[key]), height: y(base) - y(base + b[key]), class: `bar-${key}` });
        bar.append(shape("title", {}, `${bucketLabel(b.bucket_start, bucket)}: ${NUMBER.format(b[key])} ${label}`));
        svg.append(bar);
        base += b[key];
      }
    });
    xTicks(chart, buckets.length, x, (i) => bucketLabel(buckets[i].bucket_start, bucket));
  }

  function scheduleImpact() {
    if ($("view-impact").hidden || impact.timer !== null) return;
    impact.timer = setTimeout(() => { impact.timer = null; loadImpact(); }, 1000);
  }

  // ------------------------------------------------------------------------------------ views

  function show(view) {
    const impactShown = view === "impact";
    $("view-live").hidden = impactShown;
    $("view-impact").hidden = !impactShown;
    $("tab-live").setAttribute("aria-selected", String(!impactShown));
    $("tab-impact").setAttribute("aria-selected", String(impactShown));
    if (impactShown) loadImpact(); else renderChart();
  }

  async function resetAgents(agentId) {
    const what = agentId === null ? "every agent" : `agent "${plain(agentId)}"`;
    const token = window.prompt(`Operator token to reset ${what}:`, sessionStorage.getItem("sentra-token") || "");
    if (!token) return;
    const path = agentId === null ? "/v1/reset" : `/v1/agents/${encodeURIComponent(agentId)}/reset`;
    try {
      await answer(await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${token}` } }));
      sessionStorage.setItem("sentra-token", token);
    } catch (error) {
      window.alert(plain(`Reset refused: ${error.message}`));
    }
  }

  // An operator's group assignment (PUT /v1/agents/{id}/group): a group the policy declares, or
  // empty to clear the assignment (the policy's patterns decide again).
  async function assignGroup(agentId) {
    const group = window.prompt(`Group for agent "${plain(agentId)}" (${config.groups.join(", ")}; empty: the policy decides):`, "");
    if (group === null) return;
    const token = window.prompt(`Operator token to assign agent "${plain(agentId)}":`, sessionStorage.getItem("sentra-token") || "");
    if (!token) return;
    const operator = window.prompt("Your name, recorded as the operator:", sessionStorage.getItem("sentra-operator") || "");
    if (!operator) return;
    try {
      await answer(await fetch(`/v1/agents/${encodeURIComponent(agentId)}/group`, {
        method: "PUT", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ group: group.trim() || null, operator }) }));
      sessionStorage.setItem("sentra-token", token);
      sessionStorage.setItem("sentra-operator", operator);
    } catch (error) {
      window.alert(plain(`Group assignment refused: ${error.message}`));
    }
  }

  // ------------------------------------------------------------------------------- reviews

  async function loadReviews() {
    if (!config.reviews) return;
    try {
      const page = await api("/v1/reviews?status=pending");
      renderReviews(page.tickets);
      $("reviews-status").textContent = "";
    } catch (error) {
      $("reviews-status").textContent = "cannot load the reviews: " + error.message;
    }
  }

  let reviewsTimer = null;
  function scheduleReviews() {
    if (reviewsTimer !== null) return;
    reviewsTimer = setTimeout(() => { reviewsTimer = null; loadReviews(); }, 100);
  }

  function renderReviews(tickets) {
    $("reviews-empty").hidden = tickets.length > 0;
    $("reviews").tBodies[0].replaceChildren(...tickets.map((t) => el("tr", { "data-ticket": t.ticket },
      el("td", {}, el("code", { title: t.ticket }, t.ticket.slice(0, 11) + "…")), idCell(t.agent_id), el("td", {}, t.action),
      el("td", { title: t.reason }, t.rule_id), el("td", {}, t.risk),
      el("td", { class: "input" }, JSON.stringify(t.input)), el("td", {}, t.expires.slice(0, 19).replace("T", " ")),
      el("td", {}, el("button", { type: "button", class: "approve", "data-verdict": "approve" }, "approve"),
        el("button", { type: "button", class: "deny", "data-verdict": "deny" }, "deny")))));
  }

  async function judge(ticket, verdict) {
    const token = window.prompt(`Operator token to ${verdict} ticket ${ticket}:`, sessionStorage.getItem("sentra-token") || "");
    if (!token) return;
    const operator = window.prompt("Your name, recorded as the operator:", sessionStorage.getItem("sentra-operator") || "");
    if (!operator) return;
    const note = window.prompt("A note for the audit log (optional):", "");
    if (note === null) return;
    try {
      await answer(await fetch(`/v1/reviews/${encodeURIComponent(ticket)}/${verdict}`, {
        method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ operator, note: note || null }) }));
      sessionStorage.setItem("sentra-token", token);
      sessionStorage.setItem("sentra-operator", operator);
    } catch (error) {
      window.alert(plain(`Review refused: ${error.message}`));
    }
    loadReviews();
  }

  // EventSource cannot send headers: the stream takes the read token as `access_token`.
  function connect() {
    const token = readToken(null);
    const access = token ? `&access_token=${encodeURIComponent(token)}` : "";
    const source = new EventSource(`/v1/events/stream?after=${state.lastSeq}${access}`);
    const live = $("live");
    source.onopen = () => { live.textContent = "live"; live.className = "badge on"; };
    source.onerror = () => {   // closed: refused (401) or gone; otherwise it reconnects by itself
      live.textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting";
      live.className = "badge off";
    };
    for (const kind of ["decision", "reset", "policy_load", "review", "group"]) {
      source.addEventListener(kind, (message) => {
        const record = JSON.parse(message.data);
        if (record.seq <= state.lastSeq) return;
        apply(record, true);
        render();
        if (kind === "decision") scheduleImpact();
        if (kind === "review" || kind === "reset" || (kind === "decision" && record.decision.ticket)) scheduleReviews();
      });
    }
  }

  function listen() {
    $("agents").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-agent]");
      if (row === null) return;
      const button = event.target.closest("button");
      if (button) { if (button.classList.contains("assign-group")) assignGroup(row.dataset.agent); else resetAgents(row.dataset.agent); return; }
      state.selectedAgent = row.dataset.agent;
      $("filter-agent").value = row.dataset.agent;
      render();
    });
    $("events").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-seq]");
      if (row === null) return;
      const record = state.events.find((r) => r.seq === Number(row.dataset.seq));
      state.selectedSeq = Number(row.dataset.seq);
      if (record && record.agent !== undefined && record.agent !== null) state.selectedAgent = record.agent;
      inspect(state.selectedSeq);
      render();
    });
    $("filter-agent").addEventListener("input", render);
    $("filter-decision").addEventListener("change", render);
    $("reset-all").addEventListener("click", () => resetAgents(null));
    $("reviews").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-verdict]");
      if (button === null) return;
      judge(button.closest("tr[data-ticket]").dataset.ticket, button.dataset.verdict);
    });
    $("impact-settings").addEventListener("submit", (event) => { event.preventDefault(); loadImpact(); });
    $("view-impact").addEventListener("click", (event) => {
      const link = event.target.closest("a[download]");
      if (link === null || !link.href) return;
      event.preventDefault();
      save(link);
    });
    addEventListener("hashchange", () => show(location.hash === "#impact" ? "impact" : "live"));
    new ResizeObserver(() => { if ($("view-live").hidden) renderImpact(); else renderChart(); }).observe(document.body);
  }

  // The first state: the snapshot's records, agents (read after its head) and counts.
  function load(snapshot) {
    for (const record of snapshot.events) apply(record, false);
    for (const agent of snapshot.agents) state.agents.set(agent.agent_id, agent);
    state.lastSeq = Math.max(state.lastSeq, snapshot.head);
    state.decisions = snapshot.counts.events;
    state.blocked = snapshot.counts.blocked;
    state.agentsAfter = snapshot.agents_next_after;
    const counts = { "count-agents": "agents", "count-active": "active", "count-shutdown": "shut_down" };
    for (const [id, key] of Object.entries(counts)) $(id).textContent = snapshot.counts[key] ?? "–";
    const live = $("live");
    live.textContent = "snapshot";
    live.title = `rendered by the server at ${snapshot.rendered_at} (audit seq ${snapshot.head})`;
    if (state.agentsAfter !== null) {
      $("agents-more").textContent = `The first ${snapshot.agents.length} of ${snapshot.counts.agents} agents, by id; loading the rest…`;
      $("agents-more").hidden = false;
    }
  }

  // The agents past the snapshot's first page, in pages of /v1/agents (next_after).
  async function loadAgents() {
    while (state.agentsAfter !== null) {
      const page = await api(`/v1/agents?after=${encodeURIComponent(state.agentsAfter)}`);
      for (const agent of page.agents) state.agents.set(agent.agent_id, agent);
      state.agentsAfter = page.next_after;
      render();
    }
    $("agents-more").hidden = true;
  }

  async function start() {
    const params = new URLSearchParams(location.search);
    for (const key of ["field", "bucket", "since", "until"]) if (params.get(key)) $(`impact-${key}`).value = params.get(key);
    listen();
    load(config.snapshot !== null ? config.snapshot : await api("/v1/dashboard/snapshot"));
    renderNow();
    show(location.hash === "#impact" ? "impact" : "live");
    await loadAgents();   // before the stream, which replays every change after the snapshot
    connect();
    await loadReviews();
  }

  start().catch((error) => { $("live").textContent = "error: " + error.message; });
})();
