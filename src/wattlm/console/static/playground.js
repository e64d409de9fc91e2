// Playground: streams chat/completions from this server's /v1 routes, shows citations and code.
"use strict";
(() => {
  const form = document.getElementById("play-form");
  const answer = document.getElementById("play-answer");
  const citations = document.getElementById("play-citations");
  const passage = document.getElementById("play-passage");
  const status = document.getElementById("play-status");
  const send = document.getElementById("play-send");
  const stop = document.getElementById("play-stop");
  let controller = null;

  function request() {
    const data = Object.fromEntries(new FormData(form));
    const body = { model: data.model, stream: true, temperature: Number(data.temperature),
                   top_p: Number(data.top_p), max_tokens: Number(data.max_tokens) };
    if (data.mode === "completion") {
      return { url: "/v1/completions", body: { ...body, prompt: data.prompt }, kb: "" };
    }
    const messages = [];
    if (data.system.trim()) messages.push({ role: "system", content: data.system });
    messages.push({ role: "user", content: data.prompt });
    body.messages = messages;
    body.knowledge = data.kb ? { kb: data.kb, k: Number(data.k) } : false;
    return { url: "/v1/chat/completions", body, kb: data.kb };
  }

  function showCode(req) {
    const origin = window.location.origin;
    const json = JSON.stringify(req.body, null, 2);
    document.getElementById("play-curl").textContent =
      `curl -N ${origin}${req.url} \\\n  -H "Authorization: Bearer $WATT_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '${json.replace(/'/g, "'\\''")}'`;
    const { model, stream, messages, prompt, knowledge, ...rest } = req.body;
    const args = Object.entries(rest).map(([k, v]) => `    ${k}=${JSON.stringify(v)},`).join("\n");
    const call = req.url.endsWith("chat/completions")
      ? `client.chat.completions.create(\n    model=${JSON.stringify(model)},\n    messages=${JSON.stringify(messages)},\n${args}\n    stream=True,\n    extra_body={"knowledge": ${JSON.stringify(knowledge).replace("false", "False")}},\n)`
      : `client.completions.create(\n    model=${JSON.stringify(model)},\n    prompt=${JSON.stringify(prompt)},\n${args}\n    stream=True,\n)`;
    document.getElementById("play-python").textContent =
      `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${origin}/v1", api_key=os.environ.get("WATT_API_KEY", "none"))\n` +
      `stream = ${call}\nfor chunk in stream:\n    print(chunk.choices[0].${req.url.endsWith("chat/completions") ? "delta.content" : "text"} or "", end="")`;
  }

  async function showPassage(kb, cite) {
    passage.replaceChildren();
    const query = new URLSearchParams({ source: cite.source, start: cite.start, end: cite.end });
    try {
      const response = await fetch(`/console-api/kb/${encodeURIComponent(kb)}/passage?${query}`);
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      passage.append(Console.el("strong", { text: `[${cite.id}] ${body.title || body.source}` }), document.createElement("br"),
        body.before, Console.el("mark", { class: "cited", text: body.cited }), body.after);
    } catch (error) {  // the passage text itself is in the citation: show that
      passage.append(Console.el("mark", { class: "cited", text: cite.text }));
    }
    passage.focus();
  }

  function showCitations(kb, list) {
    citations.replaceChildren();
    if (!list.length) { citations.append(Console.el("p", { class: "muted", text: Console.t("js.play.none") })); return; }
    for (const cite of list) {
      const button = Console.el("button", { type: "button", class: "secondary citation",
        "aria-label": `${Console.t("js.play.show")} [${cite.id}] ${cite.source}` },
        `[${cite.id}] ${cite.title || cite.source}${cite.heading ? " · " + cite.heading : ""}`);
      button.addEventListener("click", () => showPassage(kb, cite));
      citations.append(button);
    }
  }

  async function stream(req) {
    controller = new AbortController();
    const response = await fetch(req.url, { method: "POST", signal: controller.signal, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": Console.csrf }, body: JSON.stringify(req.body) });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let cited = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data:")) continue;
        const data = event.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        const text = choice.delta ? choice.delta.content : choice.text;
        if (text) answer.textContent += text;
        if (choice.delta && choice.delta.citations) cited = choice.delta.citations;
      }
    }
    if (req.kb) showCitations(req.kb, cited || []);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const req = request();
    showCode(req);
    answer.textContent = "";
    citations.replaceChildren();
    passage.replaceChildren();
    status.textContent = Console.t("js.play.streaming");
    send.disabled = true;
    stop.disabled = false;
    try {
      await stream(req);
      status.textContent = Console.t("js.play.done");
    } catch (error) {
      status.textContent = error.name === "AbortError" ? Console.t("js.play.stopped") : error.message;
    } finally {
      send.disabled = false;
      stop.disabled = true;
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  showCode(request());
})();
