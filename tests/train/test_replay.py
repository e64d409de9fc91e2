"""General-data replay: a fixed share of every batch comes from the replay text."""

import pytest
from transformers import AutoTokenizer

from wattlm.errors import WattError
from wattlm.recipe import load_recipe
from wattlm.train.config import TrainConfig
from wattlm.train.methods.cpt import CptMethod

DOMAIN = ["Breaker failure protection trips the adjacent breakers of the bus section. " * 12]
GENERAL = ["The bakery on the corner sells rye bread and apple cake every morning. " * 12]


@pytest.mark.parametrize("ratio, expected_share", [(0.25, 0.25), (0.1, 0.1), (0.0, 0.0)])
def test_replay_share_is_exact_over_batches(tokenizer_dir, ratio, expected_share):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = TrainConfig(seq_len=16, batch_size=4, replay_ratio=ratio)
    method = CptMethod(tokenizer, DOMAIN, config, GENERAL)
    replay_rows = {tuple(r) for r in method.replay.tolist()} if method.replay is not None else set()
    stream = method.batches()
    batches = [next(stream) for _ in range(10)]
    rows = [tuple(r) for b in batches for r in b.tolist()]
    assert all(b.shape == (4, 16) for b in batches)
    assert sum(r in replay_rows for r in rows) == round(expected_share * len(rows))


def test_recipe_rejects_ratio_without_text(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndata: {inputs: [raw]}\ntrain: {replay_ratio: 0.2}\n")
    with pytest.raises(WattError, match=r"field train: .*replay_ratio > 0 needs a replay"):
        load_recipe(path)
