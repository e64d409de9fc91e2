// Knowledge-base page: search test and document upload.
"use strict";
(() => {
  const search = document.getElementById("kb-search");
  const status = document.getElementById("kb-status");
  const hits = document.getElementById("kb-hits");
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(search));
    status.textContent = "";
    hits.replaceChildren();
    try {
      const body = await Console.postJSON(`/console-api/kb/${search.dataset.kb}/search`,
        { query: data.query, k: Number(data.k), mode: data.mode });
      if (!body.data.length) status.textContent = Console.t("js.kb.none");
      for (const hit of body.data) {
        const verdict = hit.supported ? Console.t("js.kb.supported") : Console.t("js.kb.unsupported");
        hits.append(Console.el("li", { class: "hit" },
          Console.el("strong", { text: `${hit.source}${hit.heading ? " · " + hit.heading : ""}` }),
          Console.el("span", { class: "muted", text: ` ${Console.t("js.kb.score")} ${hit.score.toFixed(4)} · ${verdict}` }),
          Console.el("div", { class: "doc", text: hit.text })));
      }
    } catch (error) {
      status.textContent = error.message;
    }
  });
  const add = document.getElementById("kb-add");
  const addStatus = document.getElementById("kb-add-status");
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("kb-file").files[0];
    if (!file) return;
    addStatus.textContent = Console.t("js.kb.adding");
    try {
      const body = await Console.send(`/console-api/kb/${add.dataset.kb}/documents?name=${encodeURIComponent(file.name)}`,
        "POST", file, "application/octet-stream");
      window.location.assign(body.url);
    } catch (error) {
      addStatus.textContent = error.message;
    }
  });
})();
