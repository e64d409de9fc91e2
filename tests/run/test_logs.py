"""llama.cpp's own log lines (model load, quantisation warnings) stay off the terminal and go to the
run's log file; `verbose` also prints them (shared/logs.py)."""

import logging
import os
import subprocess
import sys

import pytest

from wattlm.export.gguf import convert_f16, quantize
from wattlm.shared.logs import NATIVE, OURS, third_party_logs


@pytest.fixture(scope="module")
def tiny_f16(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    return convert_f16(tiny_model_dir, out / "model-f16.gguf", out / "convert.log")


def _load_and_quantize(f16, out_dir):
    from llama_cpp import Llama

    # q4_k_m on a 64-wide model: llama.cpp warns once per tensor (ncols not divisible by 256).
    quantize(f16, out_dir / "model-q4_k_m.gguf", "q4_k_m")
    Llama(model_path=str(f16), n_ctx=32, n_threads=1, verbose=False).close()


def test_llama_cpp_lines_go_to_the_log_file_not_the_terminal(tiny_f16, tmp_path, capfd):
    log_file = tmp_path / "logs" / "run.log"
    with third_party_logs(log_file):
        _load_and_quantize(tiny_f16, tmp_path)
        logging.getLogger(OURS).info("industry eval done")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    text = log_file.read_text()
    assert "not divisible by 256" in text  # the per-tensor quantisation warnings
    assert f"{NATIVE} " in text and "llama_model_loader" in text  # the model load's own lines
    assert "wattlm.run INFO industry eval done" in text
    # Outside the block nothing is left attached: the loggers are as they were.
    assert logging.getLogger(NATIVE).handlers == [] or all(
        not isinstance(h, logging.FileHandler) for h in logging.getLogger(NATIVE).handlers)


def test_verbose_prints_them_too(tiny_f16, tmp_path, capfd):
    log_file = tmp_path / "run.log"
    with third_party_logs(log_file, verbose=True):
        _load_and_quantize(tiny_f16, tmp_path)
    err = capfd.readouterr().err
    assert "not divisible by 256" in err and "llama_model_loader" in err
    assert "not divisible by 256" in log_file.read_text()


def test_progress_bar_switch_comes_before_tqdm_is_imported():
    """tqdm reads TQDM_DISABLE when imported: `watt` must not import it before `watt run` sets the switch,
    else transformers' GGUF de-quantiser draws its bar on the user's terminal."""
    code = ("import sys, wattlm.cli; assert 'tqdm' not in sys.modules; "
            "from wattlm.shared.logs import hide_progress_bars; hide_progress_bars(); "
            "from tqdm import tqdm; [_ for _ in tqdm(range(3))]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
