// The sentra-lang dashboard: agents, events, inspector and risk chart, live via /v1/events/stream.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const MAX_EVENTS = 1000;
  const state = { agents: new Map(), events: [], selectedAgent: null, selectedSeq: null, lastSeq: 0,
                  threshold: config.risk_threshold, strikes: config.strikes, blocked: 0 };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value; else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  // With a read token (config.read_token), reads carry it; it is asked for once per session.
  function readToken() {
    if (!config.read_token) return null;
    let token = sessionStorage.getItem("sentra-read-token");
    if (!token) {
      token = window.prompt("Read token for this server's events and agents:") || "";
      sessionStorage.setItem("sentra-read-token", token);
    }
    return token;
  }

  async function api(path, options) {
    const token = options ? null : readToken();
    const response = await fetch(path, token ? { headers: { Authorization: `Bearer ${token}` } } : options);
    if (response.status === 401 && token) sessionStorage.removeItem("sentra-read-token");
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail : response.status + " " + JSON.stringify(body.detail));
    return body;
  }

  function fresh(id) { return { agent_id: id, cumulative_risk: 0, blocked_attempts: 0, status: "active" }; }

  function apply(record) {
    state.lastSeq = Math.max(state.lastSeq, record.seq);
    if (record.kind === "decision") {
      const d = record.decision;
      state.agents.set(record.agent, { agent_id: record.agent, cumulative_risk: d.cumulative_risk,
        blocked_attempts: d.blocked_attempts, status: d.status });
      if (!d.allowed) state.blocked += 1;
    } else if (record.kind === "reset") {
      const ids = record.agent === null ? [...state.agents.keys()] : [record.agent];
      for (const id of ids) state.agents.set(id, fresh(id));
    } else if (record.kind === "policy_load") {
      $("policy").textContent = `policy ${record.policy.name} ${record.policy.version} · ${record.policy_hash.slice(0, 19)}… (loaded at #${record.seq})`;
    }
    state.events.push(record);
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
  }

  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderCounts(); renderAgents(); renderEvents(); renderChart(); });
  }

  function renderCounts() {
    const agents = [...state.agents.values()];
    const down = agents.filter((a) => a.status === "shut_down").length;
    $("count-events").textContent = state.events.filter((r) => r.kind === "decision").length;
    $("count-agents").textContent = agents.length;
    $("count-active").textContent = agents.length - down;
    $("count-shutdown").textContent = down;
    $("count-blocked").textContent = state.blocked;
  }

  function riskBar(risk) {
    const share = Math.min(100, (100 * risk) / state.threshold);
    const level = share >= 90 ? "bad" : share >= 60 ? "warn" : "";
    const bar = el("span", { class: "bar", title: `${risk}/${state.threshold}` }, el("i", { class: level }));
    bar.firstChild.style.width = share + "%";
    return el("span", {}, bar, ` ${risk}/${state.threshold}`);
  }

  function renderAgents() {
    const body = $("agents").tBodies[0];
    const rows = [...state.agents.values()].sort((a, b) =>
      (b.status === "shut_down") - (a.status === "shut_down") || a.agent_id.localeCompare(b.agent_id));
    body.replaceChildren(...rows.map((agent) => {
      const reset = el("button", { type: "button", title: "reset this agent (operator token)" }, "reset");
      reset.addEventListener("click", (event) => { event.stopPropagation(); resetAgents(agent.agent_id); });
      const row = el("tr", { "data-agent": agent.agent_id, class: (agent.status === "shut_down" ? "shut-down " : "") + (agent.agent_id === state.selectedAgent ? "selected" : "") },
        el("td", {}, agent.agent_id === "" ? "(empty id)" : agent.agent_id), el("td", {}, riskBar(agent.cumulative_risk)),
        el("td", {}, `${agent.blocked_attempts}/${state.strikes}`),
        el("td", { class: "status" }, agent.status === "shut_down" ? "shut down" : "active"), el("td", {}, reset));
      row.addEventListener("click", () => { state.selectedAgent = agent.agent_id; $("filter-agent").value = agent.agent_id; render(); });
      return row;
    }));
  }

  function visibleEvents() {
    const agent = $("filter-agent").value.trim();
    const decision = $("filter-decision").value;
    return state.events.filter((r) => {
      if (r.kind === "policy_load") return decision === "";
      if (agent && r.agent !== agent) return false;
      if (decision === "reset") return r.kind === "reset";
      if (decision) return r.kind === "decision" && r.decision.label === decision;
      return true;
    }).slice(-300).reverse();
  }

  function renderEvents() {
    const body = $("events").tBodies[0];
    body.replaceChildren(...visibleEvents().map((r) => {
      const cells = r.kind === "decision"
        ? [r.agent, r.action, el("span", { class: "d-" + r.decision.label.split(" ")[0] }, r.decision.label), r.decision.rule_id,
           `${r.decision.attempted_risk} → ${r.decision.cumulative_risk}/${state.threshold}`]
        : r.kind === "reset" ? [r.agent === null ? "(all)" : r.agent, "reset", `by ${r.operator}`, "", ""]
        : ["", "policy load", r.policy.name + " " + r.policy.version, "", ""];
      const row = el("tr", { "data-seq": r.seq, class: r.seq === state.selectedSeq ? "selected" : "" },
        el("td", {}, r.seq), el("td", {}, r.time.slice(11, 19)), ...cells.map((c) => el("td", {}, c)));
      row.addEventListener("click", () => { state.selectedSeq = r.seq; if (r.agent !== undefined && r.agent !== null) state.selectedAgent = r.agent; inspect(r); render(); });
      return row;
    }));
  }

  function inspect(record) {
    const panel = $("inspector");
    const parts = [el("h2", {}, `Inspector · seq ${record.seq}`)];
    if (record.kind === "decision") {
      const d = record.decision;
      parts.push(el("p", {}, el("b", { class: "d-" + d.label.split(" ")[0] }, d.label), ` ${d.rule_id}`, d.threat ? ` · ${d.threat}` : ""));
      parts.push(el("p", {}, d.reason));
      parts.push(el("h3", {}, "Explanation"), el("pre", { id: "inspector-explanation" }, record.explanation.split(" | ").join("\n")));
      parts.push(el("h3", {}, "Trace"), el("ol", { id: "inspector-trace" }, ...record.event.event_trace.map((line) => el("li", {}, line))));
      parts.push(el("h3", {}, "Input"), el("pre", {}, JSON.stringify(record.input, null, 2)));
    } else {
      parts.push(el("pre", {}, JSON.stringify(record, null, 2)));
    }
    parts.push(el("p", { class: "muted" }, `${record.time} · policy ${record.policy_hash ? record.policy_hash.slice(0, 19) : ""}… · hash ${record.hash.slice(0, 19)}…`));
    panel.replaceChildren(...parts);
  }

  function renderChart() {
    const svg = $("chart");
    const agent = state.selectedAgent;
    const ns = "http://www.w3.org/2000/svg";
    const shape = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
    svg.replaceChildren();
    if (agent === null) return;
    $("chart-agent").textContent = agent === "" ? "(empty id)" : agent;
    const points = [{ seq: 0, risk: 0 }];
    for (const r of state.events) {
      if (r.kind === "decision" && r.agent === agent) points.push({ seq: r.seq, risk: r.decision.cumulative_risk, down: r.decision.status === "shut_down" });
      else if (r.kind === "reset" && (r.agent === null || r.agent === agent)) points.push({ seq: r.seq, risk: 0 });
    }
    const top = Math.max(state.threshold, ...points.map((p) => p.risk)) * 1.1;
    const x = (i) => 10 + (580 * i) / Math.max(1, points.length - 1);
    const y = (risk) => 210 - (200 * risk) / top;
    svg.append(shape("line", { x1: 0, x2: 600, y1: y(state.threshold), y2: y(state.threshold), stroke: "#ef4444", "stroke-dasharray": "6 4" }));
    svg.append(shape("polyline", { points: points.map((p, i) => `${x(i)},${y(p.risk)}`).join(" "), fill: "none", stroke: "#38bdf8", "stroke-width": 2, id: "chart-line" }));
    points.forEach((p, i) => svg.append(shape("circle", { cx: x(i), cy: y(p.risk), r: 3, fill: p.down ? "#ef4444" : "#38bdf8" })));
  }

  async function resetAgents(agentId) {
    const what = agentId === null ? "every agent" : `agent "${agentId}"`;
    const token = window.prompt(`Operator token to reset ${what}:`, sessionStorage.getItem("sentra-token") || "");
    if (!token) return;
    const path = agentId === null ? "/v1/reset" : `/v1/agents/${encodeURIComponent(agentId)}/reset`;
    try {
      await api(path, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      sessionStorage.setItem("sentra-token", token);
    } catch (error) {
      window.alert(`Reset refused: ${error.message}`);
    }
  }

  function connect() {
    const token = readToken();
    const access = token ? `&access_token=${encodeURIComponent(token)}` : "";
    const source = new EventSource(`/v1/events/stream?after=${state.lastSeq}${access}`);
    const live = $("live");
    source.onopen = () => { live.textContent = "live"; live.className = "badge on"; };
    source.onerror = () => { live.textContent = "reconnecting"; live.className = "badge off"; };
    for (const kind of ["decision", "reset", "policy_load"]) {
      source.addEventListener(kind, (message) => {
        const record = JSON.parse(message.data);
        if (record.seq <= state.lastSeq) return;
        apply(record);
        render();
      });
    }
  }

  async function start() {
    const head = await api("/v1/events?limit=1");
    const agents = [];
    for (let page = await api("/v1/agents"); ; page = await api(`/v1/agents?after=${encodeURIComponent(page.next_after)}`)) {
      agents.push(...page.agents);
      if (page.next_after === null) break;
    }
    for (const agent of agents) state.agents.set(agent.agent_id, agent);
    let after = Math.max(head.last_global_reset - 1, head.head - MAX_EVENTS, 0);
    for (;;) {
      const page = await api(`/v1/events?after=${after}&limit=1000`);
      page.events.forEach(apply);
      if (page.events.length < 1000) break;
      after = page.next_after;
    }
    for (const agent of agents) state.agents.set(agent.agent_id, agent);
    state.lastSeq = Math.max(state.lastSeq, head.head);
    $("filter-agent").addEventListener("input", render);
    $("filter-decision").addEventListener("change", render);
    $("reset-all").addEventListener("click", () => resetAgents(null));
    render();
    // ?live=0 renders a snapshot without the stream (headless --dump-dom waits for open requests)
    if (new URLSearchParams(location.search).get("live") !== "0") connect();
    else { $("live").textContent = "snapshot"; }
  }

  start().catch((error) => { $("live").textContent = "error: " + error.message; });
})();
