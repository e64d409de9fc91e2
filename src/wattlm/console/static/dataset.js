// Dataset page: the threshold preview (asks the server to recount with the changed threshold).
"use strict";
(() => {
  const form = document.getElementById("preview-form");
  if (!form) return;
  const select = document.getElementById("preview-step");
  const result = document.getElementById("preview-result");
  const showParams = () => {
    for (const set of form.querySelectorAll(".preview-params")) {
      const active = set.dataset.step === select.value;
      set.hidden = !active;
      set.disabled = !active;
    }
  };
  select.addEventListener("change", showParams);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = new URLSearchParams(new FormData(form));
    try {
      const response = await fetch(`/console-api/datasets/${form.dataset.dataset}/preview?${query}`);
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      result.textContent = Console.t("js.preview.result")
        .replace("{now}", body.now_dropped).replace("{kept}", body.kept)
        .replace("{back}", body.would_keep).replace("{samples}", body.samples).replace("{reason}", body.reason);
      result.className = "";
    } catch (error) {
      result.textContent = error.message;
      result.className = "error";
    }
  });
})();
