// Eval page: run the picked task files on the picked models, upload a task file.
"use strict";
(() => {
  const form = document.getElementById("eval-form");
  const status = document.getElementById("eval-status");
  document.getElementById("eval-run").addEventListener("click", async () => {
    const data = new FormData(form);
    const models = data.getAll("model");
    status.textContent = Console.t("js.eval.running");
    try {
      await Console.postJSON("/console-api/eval/run", { models, tasks: data.getAll("task"), limit: data.get("limit") || null });
      window.location.assign("/eval?" + new URLSearchParams(models.map((m) => ["model", m])));
    } catch (error) {
      status.textContent = error.message;
    }
  });
  const upload = document.getElementById("task-upload");
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("task-file").files[0];
    if (!file) return;
    try {
      await Console.send(`/console-api/eval/tasks?name=${encodeURIComponent(file.name)}`, "POST", file, "application/octet-stream");
      window.location.reload();
    } catch (error) {
      status.textContent = error.message;
    }
  });
})();
