// One run, live: its progress events, row changes and log lines over Server-Sent Events, the loss curve
// drawn as SVG, and the cancel / resume buttons. Everything shown comes from the job's records, so a
// reopened page (or another browser) rebuilds the same view from the first event.
"use strict";
(() => {
  const API = "/console-api";
  let run = JSON.parse(document.getElementById("run-data").textContent);
  const $ = (id) => document.getElementById(id);
  const two = (n) => String(n).padStart(2, "0");
  const when = (stamp) => {  // as the server renders it: YYYY-MM-DD HH:MM
    if (!stamp) return "";
    const d = new Date(stamp * 1000);
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
  };
  const series = new Map();  // stage ("train", "task_train") -> [[step, loss], ...]
  const stageItems = new Map();
  let lastSeq = 0;
  let source = null;
  let logFresh = true;  // the first log message replaces the server-rendered tail (it repeats it)
  let drawQueued = false;

  function showRun(next) {
    run = next;
    const badge = $("run-status");
    badge.className = `status status-${run.status}`;
    badge.textContent = Console.t(`js.runs.status.${run.status}`);
    $("run-stage").textContent = run.stage || "";
    if (run.steps) $("run-step").textContent = `${run.step}/${run.steps}`;
    $("run-attempt").textContent = run.attempt;
    $("run-started").textContent = when(run.started);
    $("run-finished").textContent = when(run.finished);
    $("run-error").textContent = run.error || "";
    $("run-error").hidden = !run.error;
    $("run-cancel").hidden = !["queued", "running"].includes(run.status);
    $("run-resume").hidden = !["failed", "cancelled", "interrupted"].includes(run.status);
    showArtifacts(run.result && run.result.artifacts);
  }

  function showArtifacts(artifacts) {
    const list = $("run-artifacts");
    list.replaceChildren();
    for (const [role, id] of Object.entries(artifacts || {})) {
      const page = ["corpus", "general", "replay", "task_replay", "synth"].includes(role) ? "datasets" : "models";
      list.append(Console.el("li", {}, `${role}: `, Console.el("a", { href: `/${page}/${encodeURIComponent(id)}`, text: id })));
    }
  }

  function addEvent(text, kind) {
    const list = $("run-events");
    const item = Console.el("li", { class: kind, text });
    list.append(item);
    list.scrollTop = list.scrollHeight;
    return item;
  }

  function onProgress(event) {
    lastSeq = Math.max(lastSeq, event.seq);
    if (event.kind === "stage") {
      stageItems.set(event.stage, addEvent(event.stage, "stage"));
    } else if (event.kind === "stage_end") {
      const item = stageItems.get(event.stage);
      if (item) item.textContent = `${event.stage} (${Console.t("js.runs.stage_took")} ${event.seconds.toFixed(1)} s)`;
    } else if (event.kind === "train_step") {
      if (!series.has(event.stage)) series.set(event.stage, []);
      const points = series.get(event.stage);
      if (!points.length || points[points.length - 1][0] < event.step) points.push([event.step, event.loss]);
      $("run-loss").textContent = event.loss.toFixed(4);
      $("run-tps").textContent = event.tokens_per_s ? event.tokens_per_s.toFixed(0) : "";
      $("run-eta").textContent = event.eta_s == null ? "" : `${Math.floor(event.eta_s / 60)}:${String(Math.round(event.eta_s % 60)).padStart(2, "0")}`;
      $("run-step").textContent = `${event.step}/${event.steps}`;
      queueDraw();
    } else if (event.kind === "eval") {
      const scores = Object.entries(event.scores || {}).map(([name, value]) =>
        `${name} ${typeof value === "number" ? value.toFixed(4) : value}`).join(", ");
      addEvent(`${event.model}: ${scores}`, "eval");
    } else if (event.kind === "message") {
      addEvent(event.text, "message");
    } else if (event.kind === "resume" || event.kind === "end") {
      addEvent(event.kind === "end" ? Console.t(`js.runs.status.${event.status}`) : Console.t("js.runs.status.queued"), "stage");
    }
  }

  function onLog(text) {
    const log = $("run-log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = (logFresh ? "" : log.textContent) + text;
    logFresh = false;
    if (log.textContent.length > 64000) log.textContent = log.textContent.slice(-48000);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function queueDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => { drawQueued = false; drawLoss(); });
  }

  function drawLoss() {
    const svg = $("loss-chart");
    const NS = "http://www.w3.org/2000/svg";
    const node = (tag, attrs, text) => {
      const el = document.createElementNS(NS, tag);
      for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
      if (text !== undefined) el.textContent = text;
      return el;
    };
    const all = [...series.values()].flat();
    svg.replaceChildren(node("title", {}, Console.t("js.runs.loss_chart")));
    if (!all.length) {
      svg.append(node("text", { x: 20, y: 40 }, Console.t("js.runs.no_steps")));
      return;
    }
    const [left, right, top, bottom] = [56, 624, 16, 244];
    const maxStep = Math.max(...all.map((p) => p[0]), 1);
    let lo = Math.min(...all.map((p) => p[1]));
    let hi = Math.max(...all.map((p) => p[1]));
    if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
    const x = (step) => left + (right - left) * step / maxStep;
    const y = (loss) => bottom - (bottom - top) * (loss - lo) / (hi - lo);
    for (const frac of [0, 0.5, 1]) {
      const value = lo + (hi - lo) * frac;
      svg.append(node("line", { class: "grid", x1: left, x2: right, y1: y(value), y2: y(value) }));
      svg.append(node("text", { x: 4, y: y(value) + 4 }, value.toFixed(3)));
    }
    svg.append(node("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }));
    svg.append(node("line", { class: "axis", x1: left, x2: left, y1: top, y2: bottom }));
    svg.append(node("text", { x: left, y: bottom + 18 }, "0"));
    svg.append(node("text", { x: right - 40, y: bottom + 18 }, String(maxStep)));
    [...series.entries()].forEach(([stage, points], index) => {
      svg.append(node("polyline", { class: `series-${index % 3}`, points: points.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(" ") }));
      const [lastStep, lastLoss] = points[points.length - 1];  // visible from the first step on
      svg.append(node("circle", { class: `series-${index % 3}`, cx: x(lastStep).toFixed(1), cy: y(lastLoss).toFixed(1), r: 3 }));
      svg.append(node("text", { x: right - 140, y: top + 14 + 16 * index, class: `series-${index % 3}` }, `— ${stage}`));
    });
  }

  function connect() {
    if (source) source.close();
    const stream = new EventSource(`${API}/runs/${encodeURIComponent(run.id)}/stream?after=${lastSeq}`);
    source = stream;
    stream.addEventListener("progress", (message) => onProgress(JSON.parse(message.data)));
    stream.addEventListener("job", (message) => { showRun(JSON.parse(message.data)); $("run-live").textContent = ""; });
    stream.addEventListener("log", (message) => onLog(JSON.parse(message.data).text));
    // After `done` the server ends the response; the browser then reports an error and would reconnect:
    // closing there (not on `done`, which would abort the response still in flight) ends it cleanly.
    let ended = false;
    stream.addEventListener("done", () => { ended = true; });
    stream.addEventListener("error", () => {
      if (ended) {
        stream.close();
        if (source === stream) source = null;
      } else {
        $("run-live").textContent = Console.t("js.runs.live_lost");
      }
    });
  }

  async function act(action) {
    const button = $(`run-${action}`);
    button.disabled = true;
    try {
      const answer = await Console.postJSON(`${API}/runs/${encodeURIComponent(run.id)}/${action}`, {});
      showRun(answer.run);
      if (action === "resume") { logFresh = true; connect(); }
    } catch (error) {
      $("run-live").textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }
  $("run-cancel").addEventListener("click", () => act("cancel"));
  $("run-resume").addEventListener("click", () => act("resume"));

  showRun(run);
  drawLoss();
  connect();
})();
