"""Grounded answers of real models, measured: key-character recall, char-F1, refusals, citation checks.

    python bench/kb_answers.py --kb holdout --task examples/power-grid/kb-holdout/rag.jsonl \\
        --model task=/path/task-q8_0.gguf:chat --model foundation=/path/gemma-3-270m-Q4_K_M.gguf:raw \\
        [--prompts served,single,...] [--limit N] [--json out.json]

For each question the KB (in $WATT_HOME) is searched once (hybrid, the served default); then each
model answers each prompt variant greedily through llama.cpp, and the answer goes through what the
server does after generation (`serve/grounding.py::finish_answer`: citation check, extractive
fallback). `:chat` wraps the prompt in the Gemma chat turns the task tier was trained with; `:raw`
sends it as a completion (a base model has no chat template).

Scores over in-scope questions, in points: `key_recall` (share of the reference's characters / words in
the answer, as a multiset; the issue's goal is 60), `char_f1`, `false_refusals`; over out-of-scope
questions: `refused`. Each row is one stage after generation (STAGES): the model's raw words, the
checked answer, + clause expansion, + extractive fallback, + relocation of a misplaced span (what
`watt serve --kb` sends).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# After generation: the model's words as they are (raw; an empty answer counts as not refused), then
# what the server sends: checked (citations, refusal), + clause expansion, + extractive fallback.
STAGES = {"raw": (False, False, False), "checked": (False, False, False), "expanded": (True, False, False),
          "fallback": (True, True, False), "served": (True, True, True)}  # (expand, fallback, relocate)
GEMMA_TURNS = "<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n"


def key_recall(prediction: str, answer: str) -> float:
    from wattlm.shared.text import units

    gold = Counter(units(answer))
    if not gold:
        return 0.0
    return 100.0 * sum((gold & Counter(units(prediction))).values()) / sum(gold.values())


def load_items(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def retrieve_all(kb_name: str, items: list[dict], k: int) -> list[list]:
    from wattlm.kb.index import load_index
    from wattlm.kb.retrieve import search
    from wattlm.kb.stage import latest_kb
    from wattlm.registry import Registry

    registry = Registry(Path(os.environ["WATT_HOME"]))
    index = load_index(Path(latest_kb(registry, kb_name).path))
    return [search(index, item["question"], k=k) for item in items]


def main() -> None:
    from wattlm.serve.citations import finish_answer
    from wattlm.serve.grounding import PROMPTS, grounded_prompt, passage_label
    from wattlm.shared.refusal import is_refusal
    from wattlm.shared.text import char_f1

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", required=True)
    parser.add_argument("--task", required=True, type=Path)
    parser.add_argument("--model", action="append", required=True, help="name=path.gguf:chat|raw")
    parser.add_argument("--prompts", default=",".join(PROMPTS), help=f"variants, of: {', '.join(PROMPTS)}")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, default=1, help="1 on a busy machine: spinning OpenMP threads stall")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from llama_cpp import Llama

    items = load_items(args.task, args.limit)
    hits_of = retrieve_all(args.kb, items, max(args.k, 5))
    rows = []
    print(f"{len(items)} questions ({sum(1 for i in items if i.get('source'))} in scope), k={args.k}")
    print(f"{'model':>11} {'prompt':>10} {'stage':>9} | key_recall char_f1 false_ref refused | s/question")
    for spec in args.model:
        name, _, rest = spec.partition("=")
        path, _, style = rest.rpartition(":")
        llm = Llama(model_path=path, n_ctx=2048, n_threads=args.threads, verbose=False)
        for variant in args.prompts.split(","):
            started = time.monotonic()
            stages: dict[str, dict[str, list[float]]] = {stage: {"key": [], "f1": [], "false": [], "refused": []}
                                                         for stage in STAGES}
            answers = []
            for item, hits in zip(items, hits_of, strict=True):
                question = item["question"]
                used, prompt = grounded_prompt(question, hits, variant, k=args.k)
                if used is None:  # nothing supported: the server refuses without asking the model
                    raw, passages = "", []
                else:
                    text = GEMMA_TURNS.format(prompt=prompt) if style == "chat" else prompt
                    out = llm.create_completion(text, max_tokens=args.max_tokens, temperature=0.0,
                                                stop=["\n", "<end_of_turn>"])
                    raw = out["choices"][0]["text"].strip()
                    passages = [(passage_label(h), h.text) for h in used]
                finals = {"raw": raw if used is not None else finish_answer("", question, [], refuse_only=True).text}
                for stage, (expand, fallback, relocate) in STAGES.items():
                    if stage != "raw":
                        finals[stage] = finish_answer(raw, question, passages, refuse_only=used is None,
                                                      expand=expand, fallback=fallback, relocate=relocate).text
                answers.append({"question": question, "gold": item.get("answer"), "source": item.get("source"),
                                **finals})
                for stage, final in finals.items():
                    if item.get("source"):
                        golds = item["answer"] if isinstance(item["answer"], list) else [item["answer"]]
                        stages[stage]["key"].append(max(key_recall(final, gold) for gold in golds))
                        stages[stage]["f1"].append(max(char_f1(final, gold) for gold in golds))
                        stages[stage]["false"].append(100.0 * is_refusal(final))
                    else:
                        stages[stage]["refused"].append(100.0 * (is_refusal(final) or not final.strip()))
            per_q = (time.monotonic() - started) / len(items)
            for stage, scores in stages.items():
                mean = {key: (sum(v) / len(v) if v else float("nan")) for key, v in scores.items()}
                print(f"{name:>11} {variant:>10} {stage:>9} | {mean['key']:10.1f} {mean['f1']:7.1f} "
                      f"{mean['false']:9.1f} {mean['refused']:7.1f} | {per_q:6.2f}", flush=True)
                rows.append({"model": name, "prompt": variant, "stage": stage,
                             **{k: round(v, 2) for k, v in mean.items()}})
            rows.append({"model": name, "prompt": variant, "answers": answers})
        del llm
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
