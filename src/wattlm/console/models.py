"""The model page: lineage graph, metrics beside the parent's, gate results, the training loss curve,
the export table with GGUF downloads, and "serve this" (load it into the running server)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse

from wattlm.console.i18n import register
from wattlm.console.lineage_svg import lineage_svg
from wattlm.console.pages import registry_of, render
from wattlm.console.security import CsrfChecked
from wattlm.errors import WattError
from wattlm.eval.compare import model_scores
from wattlm.registry import Artifact, Registry
from wattlm.shared.charts import PALETTE, column_chart, line_chart

router = APIRouter()

register({
    "model.lineage": {"en": "Lineage", "zh": "血缘"},
    "model.metrics": {"en": "Metrics beside the parent's", "zh": "指标（与父模型对比）"},
    "model.this": {"en": "This model", "zh": "本模型"},
    "model.parent": {"en": "Parent", "zh": "父模型"},
    "model.no_parent": {"en": "No parent model (a foundation).", "zh": "没有父模型（基础模型）。"},
    "model.gates": {"en": "Quality gates", "zh": "质量门"},
    "model.passed": {"en": "passed", "zh": "通过"},
    "model.failed": {"en": "failed", "zh": "未通过"},
    "model.training": {"en": "Training", "zh": "训练"},
    "model.loss": {"en": "Training loss", "zh": "训练损失"},
    "model.exports": {"en": "Exports", "zh": "导出"},
    "model.quant": {"en": "Quantization", "zh": "量化"},
    "model.size": {"en": "Size (MB)", "zh": "大小（MB）"},
    "model.ppl": {"en": "Perplexity", "zh": "困惑度"},
    "model.speed": {"en": "Decode tokens/s", "zh": "解码 token/秒"},
    "model.greedy": {"en": "Greedy match", "zh": "贪心一致"},
    "model.download": {"en": "Download", "zh": "下载"},
    "model.serve": {"en": "Serve this", "zh": "部署此模型"},
    "model.serve_help": {"en": "Load it into this server and open the playground; or from a terminal:",
                         "zh": "加载到本服务器并打开试用页；或在终端运行："},
    "model.facts": {"en": "Facts", "zh": "概况"},
    "model.kind": {"en": "Kind", "zh": "类型"},
    "model.format": {"en": "Format", "zh": "格式"},
    "model.setting": {"en": "Setting", "zh": "设置"},
})


def parent_model(registry: Registry, art: Artifact) -> Artifact | None:
    pid = next((pid for pid, role in art.parents if role in ("parent", "model")), None)
    return registry.get(pid) if pid else None


def gate_results(registry: Registry, art: Artifact) -> list[dict]:
    """Gates of the run reports that produced this model (the report names it among its artifacts)."""
    for report in reversed(registry.list("report")):
        try:
            summary = json.loads((report.path / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        roles = [role for role, aid in (summary.get("artifacts") or {}).items() if aid == art.id]
        if roles:
            return [gate for gate in summary.get("gates") or [] if gate.get("tier") in roles]
    return []


def loss_chart(art: Artifact, title: str) -> str:
    log_file = art.path / "train_log.json" if art.path.is_dir() else None
    if log_file is None or not log_file.is_file():
        return ""
    try:
        log = json.loads(log_file.read_text(encoding="utf-8"))
    except ValueError:
        return ""
    series = {name: [float(v) for v in values] for name, values in log.items()
              if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values)
              and "loss" in name}
    return line_chart(title, series, "loss")


def gguf_file(art: Artifact):
    """The GGUF file of an export (or a GGUF-format model), or None; always inside the artifact's folder."""
    name = art.meta.get("file") or art.metrics.get("file")
    if art.path.is_file() and art.path.suffix == ".gguf":
        return art.path
    if not name or not art.path.is_dir():
        return None
    candidate = (art.path / name).resolve()
    return candidate if candidate.parent == art.path.resolve() and candidate.is_file() else None


def metric_rows(art: Artifact, parent: Artifact | None) -> tuple[list[dict], str]:
    mine = model_scores(art)
    theirs = model_scores(parent) if parent else {}
    rows = [{"metric": k, "this": mine.get(k), "parent": theirs.get(k)} for k in sorted(set(mine) | set(theirs))]
    # Groups named by the score alone (char_f1, ppl): the full names overlap under narrow columns.
    shared = {r["metric"].rsplit(":", 1)[-1]: {"this": r["this"], "parent": r["parent"]} for r in rows
              if r["this"] is not None and r["parent"] is not None}
    chart = column_chart(shared, colors=PALETTE, width=max(360, 150 * len(shared))) if shared else ""
    return rows, chart


@router.get("/models/{ref}")
def model_page(request: Request, ref: str):
    with registry_of(request) as registry:
        art = registry.get(ref)  # an unknown ref: NotFound, a 404 (console/app.py)
        if art.kind not in ("model", "export"):
            raise HTTPException(404, f"{ref} is a {art.kind}, not a model")
        parent = parent_model(registry, art)
        exports = [c for c in registry.children(art.id) if c.kind == "export"]
        graph = lineage_svg(art, registry.ancestors(art.id), exports, f"lineage of {art.name}")
        rows, chart = metric_rows(art, parent)
        context = dict(
            art=art, parent=parent, graph=graph, metric_rows=rows, metric_chart=chart,
            gates=gate_results(registry, art), loss=loss_chart(art, "training loss"),
            exports=[{"art": e, "file": gguf_file(e)} for e in exports], own_file=gguf_file(art),
            facts={k: v for k, v in art.metrics.items() if k.startswith("train_") and isinstance(v, (int, float))},
            settings=art.meta,
        )
    return render(request, "model.html", **context)


@router.get("/models/{ref}/download")
def download(request: Request, ref: str):
    with registry_of(request) as registry:
        art = registry.get(ref)  # an unknown ref: NotFound, a 404 (console/app.py)
    path = gguf_file(art)
    if path is None:
        raise HTTPException(404, f"{art.name} has no GGUF file")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.post("/models/{ref}/serve", dependencies=[CsrfChecked])
async def serve_this(request: Request, ref: str):
    """Load the model into this server's catalog (registry lookup + llama.cpp load, in a worker thread)."""
    api_app = request.app.state.api_app
    if api_app is None:
        raise HTTPException(409, "this console runs without a server; start `watt console` or `watt serve`")

    def resolve_name() -> str:
        with registry_of(request) as registry:
            return registry.get(ref).name

    try:
        name = await asyncio.to_thread(resolve_name)
        await api_app.state.served_models.get(name)
    except WattError as error:  # not servable here (no GGUF, or a server without --load-on-demand)
        raise HTTPException(409, str(error)) from error
    return RedirectResponse(f"/playground?model={quote(name)}", status_code=303)
