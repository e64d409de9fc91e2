"""lm-evaluation-harness through `watt serve` vs lm-eval's own HF backend, on the same weights.

    .venv/bin/python bench/lm_eval_parity.py [--home DIR] [--limit N] [--out results.json]

The packaged SmolLM2-135M is dequantised once to an HF folder (fp32, `models.store.hf_dir`) and that
folder is exported to an f16 GGUF with our exporter, so both backends see the same weights:
1. `watt serve` of the f16 GGUF on 127.0.0.1 (a subprocess, the batch engine, 2 threads), scored by
   lm-eval's `local-completions` model: log-likelihoods from `echo` + `logprobs` on /v1/completions.
   The tokenizer is the server's own (/tokenize, `tokenizer_backend=remote`) when lm-eval's probe of
   the server accepts it, else the HF folder's tokenizer (same ids: the GGUF was converted from it).
2. lm-eval's `hf` backend on the HF folder, fp32 on the CPU.
The task is bench/tasks/gridmc (60 four-choice questions, local JSONL). The script prints acc and
acc_norm of both and their difference, how many questions got a different answer, and the largest
difference between the two backends' log-likelihood of the same choice. The two must agree within
noise: a question or two. Nothing is downloaded (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
TASK_YAML = REPO / "bench" / "tasks" / "gridmc" / "gridmc.yaml"
THREADS = 2
SERVED_NAME = "smollm2-135m-f16"


def task_config() -> dict:
    """The task YAML as a dict, its data file made absolute (lm-eval resolves it against the cwd)."""
    import yaml

    config = yaml.safe_load(TASK_YAML.read_text())
    files = config["dataset_kwargs"]["data_files"]
    config["dataset_kwargs"]["data_files"] = {split: str(REPO / path) for split, path in files.items()}
    return config


def same_weights(home: Path) -> tuple[Path, Path]:
    """(HF folder, f16 GGUF exported from it), made once and cached in the workspace `home`."""
    from wattlm.errors import NotFound
    from wattlm.export.gguf import convert_f16
    from wattlm.models.store import add_model, hf_dir, resolve_model
    from wattlm.registry import Registry

    registry = Registry(home)
    hf_folder = hf_dir(registry, resolve_model(registry, "smollm2-135m"))
    try:
        served = registry.get(SERVED_NAME, kind="model")
        return hf_folder, served.path / served.meta["file"]
    except NotFound:
        pass
    out = home / "parity"
    out.mkdir(parents=True, exist_ok=True)
    print(f"exporting {hf_folder} to f16 GGUF", flush=True)
    gguf = convert_f16(hf_folder, out / f"{SERVED_NAME}.gguf", out / "convert.log")
    add_model(registry, str(gguf), name=SERVED_NAME)
    return hf_folder, gguf


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WattServe:
    """`watt serve` of the f16 GGUF on a free loopback port, stopped on exit."""

    def __init__(self, home: Path) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        watt = Path(sys.executable).with_name("watt")
        command = [str(watt), "serve", "--model", SERVED_NAME, "--home", str(home), "--port", str(port),
                   "--threads", str(THREADS), "--n-ctx", "2048"]
        self.log = tempfile.NamedTemporaryFile("w+", prefix="watt-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> WattServe:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"watt serve exited with {self.process.returncode}; log: {self.log.name}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"watt serve not ready after 180 s; log: {self.log.name}")

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def tokenizer_args(base_url: str, hf_folder: Path) -> dict:
    """The server's own tokenizer when lm-eval's remote backend accepts our endpoints, else the HF folder's."""
    from lm_eval.utils import check_remote_tokenizer_support

    if check_remote_tokenizer_support(base_url, max_retries=1):
        return {"tokenizer_backend": "remote"}
    print("  lm-eval's remote tokenizer probe failed (it sends no `model` to /tokenizer_info and /tokenize);"
          " using the HF folder's tokenizer", flush=True)
    return {"tokenizer_backend": "huggingface", "tokenizer": str(hf_folder)}


def evaluate(model: str, model_args: dict, limit: int | None, batch_size: int) -> dict:
    import lm_eval

    results = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=[task_config()], limit=limit,
                                      batch_size=batch_size, log_samples=True, random_seed=0, numpy_random_seed=0,
                                      torch_random_seed=0, fewshot_random_seed=0)
    name = task_config()["task"]
    scores = results["results"][name]
    # Per question: the log-likelihood of each choice, in choice order.
    choice_lls: dict[int, list[float]] = {}
    for sample in results["samples"][name]:
        choice_lls[sample["doc_id"]] = [float(resp[0]) for resp in sample["filtered_resps"]]
    return {"acc": scores["acc,none"], "acc_stderr": scores["acc_stderr,none"],
            "acc_norm": scores["acc_norm,none"], "acc_norm_stderr": scores["acc_norm_stderr,none"],
            "choice_loglikelihoods": choice_lls}


def compare(served: dict, hf: dict) -> dict:
    docs = sorted(set(served["choice_loglikelihoods"]) & set(hf["choice_loglikelihoods"]))
    argmax = lambda values: max(range(len(values)), key=values.__getitem__)  # noqa: E731
    differing = [doc for doc in docs
                 if argmax(served["choice_loglikelihoods"][doc]) != argmax(hf["choice_loglikelihoods"][doc])]
    gaps = [abs(a - b) for doc in docs
            for a, b in zip(served["choice_loglikelihoods"][doc], hf["choice_loglikelihoods"][doc], strict=True)]
    return {"questions": len(docs), "acc_diff": served["acc"] - hf["acc"],
            "acc_norm_diff": served["acc_norm"] - hf["acc_norm"],
            "questions_with_different_choice": differing, "max_abs_loglikelihood_diff": max(gaps),
            "mean_abs_loglikelihood_diff": sum(gaps) / len(gaps)}


def write_atomically(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "wattlm" / "parity-home",
                        help="workspace for the registry, the HF folder and the f16 GGUF (reused across runs)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers here as JSON")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(THREADS)
    hf_folder, gguf = same_weights(args.home)
    print(f"weights: HF folder {hf_folder}\n         f16 GGUF  {gguf}", flush=True)
    with WattServe(args.home) as server:
        backend = tokenizer_args(server.base_url, hf_folder)
        served_args = {"base_url": f"{server.base_url}/v1/completions", "model": SERVED_NAME,
                       "num_concurrent": 1, "max_retries": 1, "tokenized_requests": True, **backend}
        started = time.perf_counter()
        served = evaluate("local-completions", served_args, args.limit, batch_size=1)
        served["seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    hf = evaluate("hf", {"pretrained": str(hf_folder), "dtype": "float32", "device": "cpu"}, args.limit, batch_size=8)
    hf["seconds"] = time.perf_counter() - started
    diff = compare(served, hf)

    print(f"\ntask wattlm_gridmc, {diff['questions']} questions, 4 choices each, load average {os.getloadavg()[0]:.1f}")
    print("| backend | acc | acc_norm | seconds |")
    print("| --- | --- | --- | --- |")
    for name, row in ((f"local-completions -> watt serve (f16 GGUF, {backend['tokenizer_backend']} tokenizer)", served),
                      ("hf (fp32, same weights)", hf)):
        print(f"| {name} | {row['acc']:.4f} ± {row['acc_stderr']:.4f} | {row['acc_norm']:.4f} ± "
              f"{row['acc_norm_stderr']:.4f} | {row['seconds']:.0f} |")
    print(f"\nacc difference {diff['acc_diff']:+.4f}, acc_norm difference {diff['acc_norm_diff']:+.4f}; "
          f"questions answered differently: {len(diff['questions_with_different_choice'])} "
          f"{diff['questions_with_different_choice']}; log-likelihood of the same choice differs by at most "
          f"{diff['max_abs_loglikelihood_diff']:.4f} (mean {diff['mean_abs_loglikelihood_diff']:.4f})")
    if args.out:
        summary = {"served": {k: v for k, v in served.items() if k != "choice_loglikelihoods"},
                   "hf": {k: v for k, v in hf.items() if k != "choice_loglikelihoods"},
                   "tokenizer_backend": backend["tokenizer_backend"], **diff}
        write_atomically(args.out, summary)


if __name__ == "__main__":
    main()
