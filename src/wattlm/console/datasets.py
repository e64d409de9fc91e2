"""The dataset page: the quality card (drops per reason, histograms), kept and dropped documents with
their drop reason and PII placeholders highlighted, and a filter-threshold preview.

The preview re-runs a filter's own `keep` with the changed threshold over the documents the dataset
stores (its kept documents, and the dropped ones the data stage kept as samples), so nothing runs
but that one cheap check, and the count is what the real step would decide for those documents.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from markupsafe import Markup

from wattlm.console.i18n import register
from wattlm.console.pages import registry_of, render
from wattlm.data.base import Filter
from wattlm.data.document import Document
from wattlm.data.steps import STEPS
from wattlm.datasets import dataset_records
from wattlm.errors import NotFound, WattError
from wattlm.registry import Artifact
from wattlm.shared.charts import hbar_chart, histogram

router = APIRouter()
PAGE_SIZE = 10
PREVIEW_DOCS = 20_000  # the preview reads at most this many kept documents
# Filters that need a model or a corpus-wide pass are not previewed: their `keep` is not a cheap check.
NOT_PREVIEWED = frozenset({"filter_quality_classifier", "filter_perplexity", "decontaminate"})
_PII = re.compile(r"&lt;PII_[A-Z]+&gt;")

register({
    "dataset.card": {"en": "Quality card", "zh": "质量卡"},
    "dataset.counts": {"en": "Counts", "zh": "计数"},
    "dataset.dropped": {"en": "Documents dropped per reason", "zh": "按原因统计的丢弃文档"},
    "dataset.lengths": {"en": "Length of kept documents (characters)", "zh": "保留文档长度（字符）"},
    "dataset.steps": {"en": "Steps", "zh": "处理步骤"},
    "dataset.step": {"en": "Step", "zh": "步骤"},
    "dataset.in": {"en": "Documents in", "zh": "输入文档"},
    "dataset.out": {"en": "Documents out", "zh": "输出文档"},
    "dataset.pii": {"en": "PII replaced", "zh": "已替换的个人信息"},
    "dataset.browse": {"en": "Documents", "zh": "文档"},
    "dataset.show": {"en": "Show", "zh": "显示"},
    "dataset.kept": {"en": "Kept", "zh": "保留"},
    "dataset.dropped_docs": {"en": "Dropped (samples the data stage kept)", "zh": "丢弃（数据阶段保存的样例）"},
    "dataset.reason": {"en": "Drop reason", "zh": "丢弃原因"},
    "dataset.split": {"en": "Split", "zh": "划分"},
    "dataset.source": {"en": "Source", "zh": "来源"},
    "dataset.all_reasons": {"en": "all reasons", "zh": "全部原因"},
    "dataset.next": {"en": "Next page", "zh": "下一页"},
    "dataset.prev": {"en": "Previous page", "zh": "上一页"},
    "dataset.preview": {"en": "Threshold preview", "zh": "阈值预览"},
    "dataset.preview_help": {"en": "Change a filter's threshold to see how many stored documents it would drop, without running the stage.",
                             "zh": "修改过滤器阈值，查看会丢弃多少已存储的文档（不运行数据阶段）。"},
    "dataset.filter": {"en": "Filter", "zh": "过滤器"},
    "dataset.count": {"en": "Count", "zh": "计数"},
    "dataset.apply": {"en": "Preview", "zh": "预览"},
    "dataset.no_preview": {"en": "This dataset's recipe has no filter with a threshold to preview.",
                           "zh": "此数据集的配方中没有可预览阈值的过滤器。"},
    "js.preview.result": {"en": "{now} of {kept} kept documents would be dropped; {back} of {samples} recorded {reason} documents would be kept.",
                          "zh": "{kept} 篇保留文档中有 {now} 篇会被丢弃；已记录的 {samples} 篇“{reason}”文档中有 {back} 篇会被保留。"},
})


def highlight_pii(text: str) -> Markup:
    """The text escaped, with the scrubber's placeholders (<PII_EMAIL>, ...) marked."""
    return Markup(_PII.sub(lambda m: f'<mark class="pii">{m.group(0)}</mark>', escape(text)))


def quality_report(art: Artifact) -> dict:
    report_file = art.path / "report.json"
    try:
        return json.loads(report_file.read_text(encoding="utf-8")) if report_file.is_file() else {}
    except ValueError:
        return {}


def kept_documents(art: Artifact, limit: int) -> list[dict]:
    docs: list[dict] = []
    for split in ("train", "heldout"):
        try:
            for record in dataset_records(art, split):
                docs.append({"split": split, "source": record.get("source") or record.get("id", ""),
                             "text": record.get("text") or ""})
                if len(docs) >= limit:
                    return docs
        except NotFound:
            continue
    return docs


def previewable_filters(art: Artifact) -> list[dict]:
    """The recipe's filters with numeric thresholds: [{step, reason, params: {name: current value}}]."""
    found = []
    for spec in (art.recipe.get("data") or {}).get("steps") or []:
        name = spec.get("name")
        cls = STEPS.get(name)
        if cls is None or not issubclass(cls, Filter) or name in NOT_PREVIEWED:
            continue
        defaults = cls.Params().model_dump() if _constructible(cls) else {}
        values = {**defaults, **(spec.get("params") or {})}
        numeric = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numeric:
            found.append({"step": name, "reason": cls.drop_reason, "params": numeric})
    return found


def _constructible(cls) -> bool:
    try:
        cls.Params()
        return True
    except Exception:  # a step whose params have required fields: only the recipe's values count
        return False


def preview_counts(art: Artifact, step: str, params: dict[str, Any]) -> dict:
    """How the filter `step` with `params` would decide over the stored documents."""
    allowed = {f["step"]: f for f in previewable_filters(art)}
    if step not in allowed:
        raise WattError(f"step '{step}' is not a previewable filter of this dataset ({', '.join(allowed) or 'none'})")
    current = allowed[step]["params"]
    settings = {**current, **{k: type(current[k])(v) for k, v in params.items() if k in current}}
    filter_step = STEPS[step](**settings)
    kept = kept_documents(art, PREVIEW_DOCS)
    reason = allowed[step]["reason"]
    samples = [s for s in quality_report(art).get("samples", {}).get("dropped", []) if s.get("reason") == reason]
    now_dropped = sum(not filter_step.keep(Document(id="", text=d["text"], source=d["source"])) for d in kept)
    back = sum(filter_step.keep(Document(id="", text=s["text"], source=s.get("source", ""))) for s in samples)
    return {"step": step, "reason": reason, "params": settings, "kept": len(kept), "now_dropped": now_dropped,
            "samples": len(samples), "would_keep": back,
            "dropped_before": (art.metrics.get("dropped") or {}).get(reason, 0)}


def _dataset(registry, ref: str) -> Artifact:
    art = registry.get(ref)
    if art.kind != "dataset":
        raise HTTPException(404, f"{ref} is a {art.kind}, not a dataset")
    return art


@router.get("/datasets/{ref}")
def dataset_page(request: Request, ref: str, show: str = "kept", reason: str = "", page: int = 0):
    with registry_of(request) as registry:
        art = _dataset(registry, ref)
    report = quality_report(art)
    dropped = report.get("dropped") or art.metrics.get("dropped") or {}
    if show == "dropped":
        rows = [{"split": "", "source": s.get("source", ""), "text": s.get("text", ""), "reason": s.get("reason", "")}
                for s in report.get("samples", {}).get("dropped", []) if not reason or s.get("reason") == reason]
    else:
        show = "kept"
        rows = kept_documents(art, (max(page, 0) + 1) * PAGE_SIZE + 1)
    page = max(page, 0)
    visible = rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    for row in visible:
        row["html"] = highlight_pii(row["text"])
    lengths = [(f"{b['min_chars']}-{b['max_chars'] if b['max_chars'] >= 0 else ''}", b["docs"])
               for b in report.get("length_histogram") or []]
    other_histograms = {name: [(str(b.get("label", b.get("min", ""))), b.get("docs", 0)) for b in bins]
                        for name in ("quality_score_histogram", "perplexity_histogram")
                        if (bins := report.get(name))}
    return render(
        request, "dataset.html", art=art, report=report, show=show, reason=reason, page=page, rows=visible,
        more=len(rows) > (page + 1) * PAGE_SIZE, reasons=sorted(dropped),
        dropped_chart=hbar_chart(sorted(dropped.items(), key=lambda kv: -kv[1]), width=420, label_width=150)
        if dropped else "",
        length_chart=histogram(lengths) if lengths else "",
        other_charts={name: histogram(rows_) for name, rows_ in other_histograms.items()},
        counts={k: art.metrics.get(k) for k in ("docs_in", "docs_kept", "docs_train", "docs_heldout", "chars_in",
                                                 "chars_kept", "files_failed") if k in art.metrics},
        steps=report.get("steps") or [], pii=report.get("pii") or {}, filters=previewable_filters(art),
    )


@router.get("/console-api/datasets/{ref}/preview")
def preview(request: Request, ref: str, step: str):
    params = {k: v for k, v in request.query_params.items() if k != "step"}
    with registry_of(request) as registry:
        art = _dataset(registry, ref)
    try:
        return preview_counts(art, step, params)
    except (WattError, ValueError) as error:
        raise HTTPException(400, str(error)) from error
