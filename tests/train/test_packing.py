import pytest

from wattlm.errors import WattError
from wattlm.train.packing import eval_windows, pack


def test_pack_drops_only_the_tail():
    blocks = pack(list(range(10)), 4)
    assert blocks.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_short_stream_becomes_one_block_and_tiny_stream_fails():
    assert pack([1, 2, 3], 8).tolist() == [[1, 2, 3]]
    with pytest.raises(WattError, match="fewer than 2 tokens"):
        pack([1], 8)


def test_eval_windows_cover_everything():
    windows = eval_windows(list(range(10)), 4)
    assert [w.tolist() for w in windows] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
