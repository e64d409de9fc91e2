"""Refusal training, measured: the task tier trained with refusal_ratio 0 and r, asked without a KB.

From a workspace where the power-grid recipe has run (its industry model `power-grid-industry` and its
synthesized QA `power-grid-synth`), for each ratio:
1. the task data: the synth dataset itself for 0, else the same pairs with refusal examples mixed in
   at that share (`synth/remix.py`: the rows `watt synth --refusal-ratio r` writes from the same teacher
   replies, without asking the teacher again);
2. the task model: `train_model` with the recipe's `task.train` settings (same seed, same steps) from the
   industry model; cached in the workspace, so a rerun only scores;
3. greedy answers (eval/lm.py `greedy_generate`, the model's chat template, 32 tokens, one line) to
   - in-scope questions, the recipe's QA eval (examples/power-grid/eval/power-grid-qa.jsonl: 40 questions
     on the corpus, kept out of the synth data): closed-book (no passage) and open-book (the passage in the
     prompt, what the task model is for): char-F1, key-character recall (points) and false refusals;
   - out-of-scope questions, closed-book: the KB hold-out's 6 and 14 more
     (examples/power-grid/kb-holdout/closed_book_out_of_scope.jsonl; none is a training refusal question):
     the share of refusals, echoes, debris, empty and other answers (definitions: eval/closed_book.py),
     and `guard`: the share that `watt serve`'s closed-book guard replaces (serve/closed_book_guard.py).
Answers per model are saved to --out (JSON) with every prediction, so the table can be checked by eye.

    WATT_HOME=<a copy of a finished demo workspace> nice -n 10 python bench/refusal_bench.py \
        --ratios 0 0.1 0.2 --out /tmp/refusal.json [--steps 32] [--seed 1] [--shapes closed_book] [--threads 1]

(`--steps`: another training budget than the recipe's; the recipe's other `task.train` settings, such
as `answer_end`, are used as written.)

(`--threads 1` on a machine that others load: two torch threads waiting on each other made the answers
6x slower there.)

Each task model takes one training run of the recipe's steps (minutes on two cores) and about 100
generations to score; models are trained and scored one at a time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "power-grid" / "recipe.yaml"
IN_SCOPE = REPO / "examples" / "power-grid" / "eval" / "power-grid-qa.jsonl"
HOLDOUT = REPO / "examples" / "power-grid" / "kb-holdout"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def out_of_scope_questions() -> list[str]:
    holdout = [r["question"] for r in read_jsonl(HOLDOUT / "rag.jsonl") if r.get("source") is None]
    return holdout + [r["question"] for r in read_jsonl(HOLDOUT / "closed_book_out_of_scope.jsonl")]


def task_model(registry, industry, synth, recipe, ratio: float, threads: int | None, steps: int | None = None,
               seed: int | None = None, shapes: list[str] | None = None):
    from wattlm.synth.remix import add_refusals
    from wattlm.train.stage import train_model

    # a synth dataset made with refusals (the recipe's refusal_ratio) is remixed, at 0 too (synth/remix.py)
    has_refusals = bool(synth.metrics.get("refusals"))
    dataset = synth if ratio == 0 and not has_refusals else add_refusals(registry, synth, ratio, shapes=shapes)[0]
    # threads is not in the model's cache key: the same model whatever the machine gives it
    config = recipe.task.train.train_config().model_copy(update={"threads": threads})
    if steps:  # another budget than the recipe's (the model's cache key changes with it)
        config = config.model_copy(update={"steps": steps})
    if seed is not None:  # another training seed: how much of a difference is the draw
        config = config.model_copy(update={"seed": seed})
    started = time.monotonic()
    model, reused = train_model(registry, industry, dataset, config, f"refusal-bench-{ratio:g}", progress=False)
    print(f"ratio {ratio:g}, {config.steps} steps, seed {config.seed}: data {dataset.id} ({dataset.metrics.get('examples')}, refusals "
          f"{dataset.metrics.get('refusals', {})}), model {model.id} "
          f"({'cached' if reused else f'trained in {time.monotonic() - started:.0f} s'})", flush=True)
    return model


def answers(model_dir: Path, prompts: list[str], batch_size: int) -> list[str]:
    from wattlm.eval.lm import greedy_generate
    from wattlm.models.hf import load_causal_lm, load_tokenizer

    tokenizer, lm = load_tokenizer(model_dir), load_causal_lm(model_dir)
    return greedy_generate(lm, tokenizer, prompts, max_new_tokens=32, batch_size=batch_size)


def score(in_scope: list[dict], closed: list[str], opened: list[str], oos: list[str], oos_answers: list[str]) -> dict:
    from wattlm.eval.closed_book import KINDS, answer_kind, mentions_refusal
    from wattlm.eval.grounded_qa import key_recall
    from wattlm.serve.closed_book_guard import refused_kind
    from wattlm.shared.refusal import is_refusal
    from wattlm.shared.text import char_f1

    def best(fn, prediction: str, item: dict) -> float:  # an item may accept several answers
        answers = item["answer"] if isinstance(item["answer"], list) else [item["answer"]]
        return max(fn(prediction, answer) for answer in answers)

    def in_scope_scores(predictions: list[str]) -> dict:
        pairs = list(zip(predictions, in_scope, strict=True))
        return {"char_f1": sum(best(char_f1, p, i) for p, i in pairs) / len(pairs),
                "key_recall": sum(best(key_recall, p, i) for p, i in pairs) / len(pairs),
                "false_refusals": 100.0 * sum(is_refusal(p) for p, _ in pairs) / len(pairs),
                "mentions_refusal": 100.0 * sum(mentions_refusal(p) for p, _ in pairs) / len(pairs)}

    kinds = Counter(answer_kind(a, q) for a, q in zip(oos_answers, oos, strict=True))
    mentions = 100.0 * sum(map(mentions_refusal, oos_answers)) / len(oos)
    # what `watt serve`'s closed-book guard would replace by the refusal (serve/closed_book_guard.py)
    guarded = 100.0 * sum(refused_kind(a, q) is not None for a, q in zip(oos_answers, oos, strict=True)) / len(oos)
    return {"closed_book": in_scope_scores(closed), "open_book": in_scope_scores(opened),
            "out_of_scope": {**{kind: 100.0 * kinds[kind] / len(oos) for kind in KINDS}, "mentions_refusal": mentions,
                             "guarded": guarded}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    parser.add_argument("--industry", default="power-grid-industry")
    parser.add_argument("--synth", default="power-grid-synth")
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's task.train.steps)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's task.train.seed)")
    parser.add_argument("--shapes", nargs="+", default=None, choices=["closed_book", "off_topic_passage", "other_passage"],
                        help="refusal examples of these shapes only (default: the synth dataset's, else all)")
    parser.add_argument("--out", type=Path, default=None, help="JSON with every prediction (and reused on rerun)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for training and answers (default: "
                        "all cores; on a machine others load, 1 avoids threads waiting on each other)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from wattlm.recipe import load_recipe
    from wattlm.registry import Registry
    from wattlm.shared.qa_format import qa_prompt
    from wattlm.shared.records import atomic_write_text

    registry = Registry()
    recipe = load_recipe(args.recipe)
    industry, synth = registry.get(args.industry, kind="model"), registry.get(args.synth, kind="dataset")
    in_scope = read_jsonl(IN_SCOPE)
    oos = out_of_scope_questions()
    prompts = ([qa_prompt(i["question"])[0] for i in in_scope] + [qa_prompt(i["question"], i["context"])[0] for i in in_scope]
               + [qa_prompt(q)[0] for q in oos])
    saved = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    print(f"{len(in_scope)} in-scope questions (closed- and open-book), {len(oos)} out-of-scope; "
          f"industry {industry.id}, synth {synth.id}", flush=True)
    rows = []
    for ratio in args.ratios:
        model = task_model(registry, industry, synth, recipe, ratio, args.threads, args.steps, args.seed, args.shapes)
        row = saved.get(model.id)
        if row is None or row.get("prompts") != prompts:
            started = time.monotonic()
            said = answers(model.path, prompts, args.batch_size)
            row = {"ratio": ratio, "prompts": prompts, "answers": said, "seconds": round(time.monotonic() - started, 1)}
            saved[model.id] = row
            if args.out:
                atomic_write_text(args.out, json.dumps(saved, ensure_ascii=False, indent=1) + "\n")
        row["steps"] = args.steps or recipe.task.train.steps
        row["seed"] = args.seed if args.seed is not None else recipe.task.train.seed
        n = len(in_scope)
        said = row["answers"]
        row["scores"] = score(in_scope, said[:n], said[n:2 * n], oos, said[2 * n:])
        rows.append(row)
        print(f"ratio {ratio:g} scored ({row['seconds']} s of generation)", flush=True)
        print_table(rows, len(oos))


def print_table(rows: list[dict], n_oos: int) -> None:
    """Points (% of questions). `in`: the refusal sentence occurs anywhere in the answer (eval/closed_book.py)."""
    print(f"\n{'ratio':>5} {'steps':>5} {'seed':>4} | closed-book in-scope: F1   key false-ref   in | open-book: F1   key false-ref   in | "
          f"out-of-scope ({n_oos}): refused echo debris empty answered   in guard")
    for row in sorted(rows, key=lambda r: (r["ratio"], r.get("steps", 0), r.get("seed", 0))):
        c, o, x = row["scores"]["closed_book"], row["scores"]["open_book"], row["scores"]["out_of_scope"]
        print(f"{row['ratio']:>5g} {row.get('steps', ''):>5} {row.get('seed', ''):>4} | {c['char_f1']:>24.1f} {c['key_recall']:>5.1f} {c['false_refusals']:>9.1f} "
              f"{c['mentions_refusal']:>4.0f} | {o['char_f1']:>13.1f} {o['key_recall']:>5.1f} {o['false_refusals']:>9.1f} "
              f"{o['mentions_refusal']:>4.0f} | {x['refusal']:>24.1f} {x['echo']:>4.1f} {x['debris']:>6.1f} "
              f"{x['empty']:>5.1f} {x['answer']:>8.1f} {x['mentions_refusal']:>4.0f} {x['guarded']:>5.1f}")


if __name__ == "__main__":
    main()
