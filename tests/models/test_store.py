import pytest

from wattlm.errors import NotFound, WattError
from wattlm.models.store import add_model, gguf_path, resolve_model
from wattlm.registry import Registry


def test_add_gguf_file_and_hf_folder(tmp_path, tiny_model_dir):
    registry = Registry(tmp_path / "ws")
    gguf = tmp_path / "my-model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    art = add_model(registry, str(gguf))
    assert (art.name, art.tier, art.format) == ("my-model", "foundation", "gguf")
    assert gguf_path(art) == gguf.resolve()
    hf = add_model(registry, str(tiny_model_dir), name="tiny", tier="industry")
    assert (hf.format, hf.tier, hf.path) == ("hf", "industry", tiny_model_dir.resolve())
    assert resolve_model(registry, "tiny").id == hf.id


def test_bad_sources_are_named(tmp_path):
    registry = Registry(tmp_path / "ws")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(WattError, match="notes.txt: expected a .gguf file"):
        add_model(registry, str(tmp_path / "notes.txt"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(WattError, match="needs a config.json"):
        add_model(registry, str(tmp_path / "folder"))
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        resolve_model(registry, "nope")
    assert registry.list() == []


def test_packaged_model_registers_on_first_use(tmp_path, smollm2_path):
    registry = Registry(tmp_path / "ws")
    art = resolve_model(registry, "smollm2-135m")
    assert art.tier == "foundation" and art.meta["packaged"] == "smollm2-135m"
    assert gguf_path(art) == smollm2_path
    assert resolve_model(registry, "smollm2-135m").id == art.id  # registered once
