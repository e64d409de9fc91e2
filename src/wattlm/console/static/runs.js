// The runs list: start a run (an example, or an uploaded recipe + documents) and keep the table fresh.
"use strict";
(() => {
  const API = "/console-api";
  const status = document.getElementById("start-status");
  const say = (text, bad) => { status.textContent = text; status.className = bad ? "error" : ""; };
  const two = (n) => String(n).padStart(2, "0");
  const when = (stamp) => {  // as the server renders it: YYYY-MM-DD HH:MM
    if (!stamp) return "";
    const d = new Date(stamp * 1000);
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
  };

  async function start(body) {
    const answer = await Console.postJSON(`${API}/runs`, body);
    window.location.assign(`/runs/${encodeURIComponent(answer.run.id)}`);
  }

  const exampleForm = document.getElementById("start-example");
  if (exampleForm) {
    exampleForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = document.getElementById("start-example-button");
      button.disabled = true;
      say(Console.t("js.runs.starting"));
      try {
        await start({ example: document.getElementById("example-select").value });
      } catch (error) {
        say(error.message, true);
        button.disabled = false;
      }
    });
  }

  document.getElementById("start-upload").addEventListener("submit", async (event) => {
    event.preventDefault();
    const recipe = document.getElementById("recipe-file").files[0];
    if (!recipe) { say(Console.t("js.runs.no_recipe"), true); return; }
    const docs = Array.from(document.getElementById("doc-files").files);
    const button = document.getElementById("start-upload-button");
    button.disabled = true;
    try {
      const { upload } = await Console.postJSON(`${API}/uploads`, {});
      const files = [["recipe", recipe], ...docs.map((file) => ["doc", file])];
      for (const [index, [role, file]] of files.entries()) {
        say(`${Console.t("js.runs.uploading")} ${index + 1}/${files.length}: ${file.name}`);
        await Console.send(`${API}/uploads/${upload}/${role}?name=${encodeURIComponent(file.name)}`, "PUT", file,
                           "application/octet-stream");
      }
      say(Console.t("js.runs.starting"));
      await start({ upload });
    } catch (error) {
      say(error.message, true);
      button.disabled = false;
    }
  });

  const table = document.getElementById("runs-table");
  const body = table.querySelector("tbody");
  function row(run) {
    const link = Console.el("a", { href: `/runs/${encodeURIComponent(run.id)}`, text: run.id });
    const badge = Console.el("span", { class: `status status-${run.status}`, text: Console.t(`js.runs.status.${run.status}`) });
    const step = Console.el("td", { class: "num", text: run.steps ? `${run.step}/${run.steps}` : "" });
    const tr = Console.el("tr", { "data-run": run.id, "data-status": run.status },
      Console.el("td", {}, link), Console.el("td", { text: run.name }), Console.el("td", {}, badge),
      Console.el("td", { text: run.stage || "" }), step, Console.el("td", { text: run.origin }),
      Console.el("td", { text: when(run.started) }), Console.el("td", { text: when(run.finished) }));
    return tr;
  }
  async function refresh() {
    try {
      const { runs } = await Console.send(`${API}/runs`, "GET");
      body.replaceChildren(...runs.map(row));
      table.hidden = runs.length === 0;
      document.getElementById("runs-empty").hidden = runs.length > 0;
    } catch (error) {
      say(error.message, true);
    }
  }
  // Poll while the page is visible: a run started elsewhere (the CLI, another browser) appears too.
  setInterval(() => { if (document.visibilityState === "visible") refresh(); }, 3000);
})();
