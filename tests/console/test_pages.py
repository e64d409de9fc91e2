"""Every console page over the tiny workspace, through the app `watt serve` builds (TestClient)."""

from __future__ import annotations

import json

from .conftest import csrf_of
from .workspace import KEPT_DOCS, TIER_MODELS


def test_overview_lists_models_by_tier_datasets_kbs_and_runs(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    positions = [html.index(f">{name}</a>") for name in TIER_MODELS]
    assert positions == sorted(positions), "tiers must read foundation -> industry -> task"
    assert html.index("grid-task-q8_0") > positions[-1]  # exports after the task tier
    for expected in ("grid-corpus", "grid-docs", 'id="recent-runs"', ">grid<"):
        assert expected in html


def test_model_page_shows_lineage_metrics_gates_loss_and_exports(client):
    task_id = _id_of(client, "grid-task")
    html = client.get(f"/models/{task_id}").text
    lineage = html[html.index('class="lineage"'):html.index("</svg>", html.index('class="lineage"'))]
    for name in ("grid-foundation", "grid-corpus", "grid-industry", "grid-task-q8_0"):
        assert name in lineage
    assert "51.75" in html and "24.5" in html  # this model's char_f1 beside the parent's
    assert "task qa_char_f1 51.75" in html and "industry domain_ppl" not in html  # only this tier's gates
    assert 'aria-label="training loss"' in html
    assert "model-q8_0.gguf" in html and "/download" in html


def test_export_download_serves_the_gguf_and_nothing_else(client):
    export_id = _id_of(client, "grid-task-q8_0")
    response = client.get(f"/models/{export_id}/download")
    assert response.status_code == 200 and response.content.startswith(b"GGUF")
    assert "model-q8_0.gguf" in response.headers["content-disposition"]
    assert client.get(f"/models/{_id_of(client, 'grid-task')}/download").status_code == 404  # an HF folder
    assert client.get("/models/mo-nope/download").status_code == 404


def test_unknown_model_is_a_404_page(client):
    response = client.get("/models/no-such-model")
    assert response.status_code == 404 and "no-such-model" in response.text


def test_dataset_page_card_documents_and_pii(client):
    corpus = _id_of(client, "grid-corpus")
    html = client.get(f"/datasets/{corpus}").text
    assert "too_short" in html and "exact_duplicate" in html
    assert '<mark class="pii">&lt;PII_EMAIL&gt;</mark>' in html
    dropped = client.get(f"/datasets/{corpus}?show=dropped&reason=too_short").text
    assert "stub.txt" in dropped and "relay_copy.md" not in dropped


def test_threshold_preview_recounts_with_the_filter(client):
    corpus = _id_of(client, "grid-corpus")
    lengths = sorted(len(doc["text"]) for doc in KEPT_DOCS)
    threshold = lengths[0] + 1  # drops exactly the shortest kept document
    body = client.get(f"/console-api/datasets/{corpus}/preview",
                      params={"step": "filter_too_short", "min_chars": threshold}).json()
    assert body["now_dropped"] == 1 and body["kept"] == 3 and body["dropped_before"] == 1
    assert body["samples"] == 1 and body["would_keep"] == 0
    low = client.get(f"/console-api/datasets/{corpus}/preview", params={"step": "filter_too_short", "min_chars": 5}).json()
    assert low["now_dropped"] == 0 and low["would_keep"] == 1  # the stub passes a 5-character minimum
    bad = client.get(f"/console-api/datasets/{corpus}/preview", params={"step": "scrub_pii"})
    assert bad.status_code == 400 and "previewable" in bad.json()["error"]


def test_playground_lists_served_models_and_kbs(client):
    html = client.get("/playground").text
    assert ">echo<" in html and "grid-docs" in html and "grid-task-q8_0" in html
    assert "/static/playground.js" in html


def test_kb_page_search_and_passage(client):
    kb = _id_of(client, "grid-docs")
    page = client.get(f"/kb/{kb}")
    assert "pump_rules.md" in page.text and "relay_test.txt" in page.text
    token = csrf_of(page.text)
    hits = client.post(f"/console-api/kb/{kb}/search", json={"query": "pump seal replacement hours", "k": 2},
                       headers={"X-CSRF-Token": token}).json()["data"]
    assert hits[0]["source"] == "pump_rules.md"
    passage = client.get(f"/console-api/kb/{kb}/passage",
                         params={"source": hits[0]["source"], "start": hits[0]["start"], "end": hits[0]["end"]}).json()
    assert passage["cited"].strip() and passage["cited"].strip() in hits[0]["text"]


def test_kb_add_and_remove_documents(client):
    kb = _id_of(client, "grid-docs")
    token = csrf_of(client.get(f"/kb/{kb}").text)
    added = client.post(f"/console-api/kb/{kb}/documents", params={"name": "breaker_notes.md"},
                        content="# Breaker notes\n\nThe breaker spring must be charged before closing the breaker.\n",
                        headers={"X-CSRF-Token": token, "Content-Type": "application/octet-stream"})
    assert added.status_code == 200, added.text
    new_page = client.get(added.json()["url"]).text
    assert "breaker_notes.md" in new_page
    removed = client.post(f"/kb/{added.json()['id']}/remove", data={"csrf": token, "source": "breaker_notes.md"},
                          follow_redirects=False)
    assert removed.status_code == 303
    assert "breaker_notes.md" not in client.get(removed.headers["location"]).text


def test_kb_upload_names_are_checked(client):
    kb = _id_of(client, "grid-docs")
    token = csrf_of(client.get(f"/kb/{kb}").text)
    for name in ("../escape.md", "a/b.md", ".hidden.md", "tool.exe", ""):
        response = client.post(f"/console-api/kb/{kb}/documents", params={"name": name}, content="text",
                               headers={"X-CSRF-Token": token})
        assert response.status_code in (400, 422), name


def test_eval_page_compares_models_side_by_side(client):
    industry, task = _id_of(client, "grid-industry"), _id_of(client, "grid-task")
    html = client.get(f"/eval?model={industry}&model={task}").text
    table = html[html.index('id="comparison"'):html.index("</table>", html.index('id="comparison"'))]
    assert "qa:grid-qa:char_f1" in table and "51.75" in table and "24.50" in table and "higher" in table
    assert html.count('role="img"') >= 2  # a chart per metric


def test_eval_task_upload_lands_in_the_workspace(client, console_home):
    token = csrf_of(client.get("/eval").text)
    row = json.dumps({"question": "Q?", "answer": "A"}) + "\n"
    response = client.post("/console-api/eval/tasks", params={"name": "grid-qa.jsonl"}, content=row,
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert (console_home / "eval-tasks" / "grid-qa.jsonl").read_text() == row
    assert "grid-qa.jsonl" in client.get("/eval").text
    refused = client.post("/console-api/eval/tasks", params={"name": "x.py"}, content="import os",
                          headers={"X-CSRF-Token": token})
    assert refused.status_code == 400


def test_serve_this_loads_a_served_model_into_the_playground(client):
    token = csrf_of(client.get("/").text)
    missing = client.post(f"/models/{_id_of(client, 'grid-task')}/serve", data={"csrf": token}, follow_redirects=False)
    assert missing.status_code == 409  # not servable here (an HF folder, and no load-on-demand)


def test_language_switch_renders_chinese_labels(client):
    token = csrf_of(client.get("/").text)
    response = client.post("/lang", data={"csrf": token, "lang": "zh", "next": "/"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    html = client.get("/").text
    assert "按层级的模型" in html and 'lang="zh-CN"' in html


def test_pages_answer_without_the_api_beside_them(console_home):
    from fastapi.testclient import TestClient

    from wattlm.console import create_console

    with TestClient(create_console(console_home)) as alone:
        assert alone.get("/").status_code == 200
        assert alone.get("/playground").status_code == 200


def _id_of(client, name: str) -> str:
    from wattlm.registry import Registry

    registry = Registry(_home(client), sweep=False)
    try:
        return registry.get(name).id
    finally:
        registry.close()


def _home(client):
    gate = next(m for m in client.app.user_middleware if m.cls.__name__ == "ConsoleGate")
    return gate.kwargs["console"].state.home


def test_eval_run_scores_picked_models_then_compares_them(client, console_home, tiny_model_dir):
    """Run from the page: a tiny random model (built from a config) on an uploaded multiple-choice file."""
    from wattlm.registry import Registry

    registry = Registry(console_home, sweep=False)
    tiny = registry.register("model", "tiny", path=tiny_model_dir, tier="foundation", format="hf")
    registry.close()
    token = csrf_of(client.get("/eval").text)
    row = json.dumps({"question": "额定频率？", "choices": ["50赫兹", "60赫兹"], "answer": 0}, ensure_ascii=False)
    client.post("/console-api/eval/tasks", params={"name": "grid-mc.jsonl"}, content=row.encode() + b"\n",
                headers={"X-CSRF-Token": token})
    ran = client.post("/console-api/eval/run", json={"models": [tiny.id], "tasks": ["grid-mc.jsonl"]},
                      headers={"X-CSRF-Token": token})
    assert ran.status_code == 200, ran.text
    assert ran.json()["data"][0]["scores"]["mc:grid-mc:acc"] in (0.0, 100.0)
    html = client.get(f"/eval?model={tiny.id}&model={_id_of(client, 'grid-task')}").text
    assert "mc:grid-mc:acc" in html
    bad = client.post("/console-api/eval/run", json={"models": [tiny.id], "tasks": ["../secrets.jsonl"]},
                      headers={"X-CSRF-Token": token})
    assert bad.status_code == 400


def test_overview_lists_recorded_runs_with_their_status_and_link(client, console_home, tmp_path):
    from wattlm.jobs import Jobs

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: grid-cli\n", encoding="utf-8")
    jobs = Jobs(console_home)
    try:
        job = jobs.create(recipe, "grid-cli", "cli")
        assert jobs.finish(job.id, "failed", error="boom")
    finally:
        jobs.close()
    html = client.get("/").text
    table = html[html.index('id="recent-runs"'):]
    assert f'<a href="/runs/{job.id}">grid-cli</a>' in table and ">failed<" in table
    assert table.index("grid-cli") < table.index(">grid<")  # the job first; the older report stays listed
