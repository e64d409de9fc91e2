"""GGUF models dequantised once per machine: the shared cache by content key, or per workspace."""

import pytest

import wattlm.models.store as store
from wattlm.models.store import add_model, hf_dir, model_cache_root
from wattlm.registry import Registry


@pytest.fixture
def conversions(monkeypatch):
    """Count conversions; a fake one writes the folder's marker file (the real one takes seconds)."""
    made = []

    def fake(model, cached):
        cached.mkdir(parents=True)
        (cached / "config.json").write_text("{}")
        made.append(cached)

    monkeypatch.setattr(store, "_dequantise", fake)
    return made


def _gguf(tmp_path, content=b"GGUF" + b"\0" * 64):
    path = tmp_path / "m.gguf"
    path.write_bytes(content)
    return path


def test_two_workspaces_share_one_conversion(tmp_path, monkeypatch, conversions):
    monkeypatch.setenv("WATT_MODEL_CACHE", str(tmp_path / "shared"))
    gguf = _gguf(tmp_path)
    folders = []
    for ws in ("a", "b"):
        registry = Registry(tmp_path / ws)
        folders.append(hf_dir(registry, add_model(registry, str(gguf), name="m")))
    assert folders[0] == folders[1] and folders[0].parent == tmp_path / "shared"
    assert len(conversions) == 1


def test_other_bytes_get_their_own_folder(tmp_path, monkeypatch, conversions):
    monkeypatch.setenv("WATT_MODEL_CACHE", str(tmp_path / "shared"))
    registry = Registry(tmp_path / "ws")
    folders = []
    for name, content in (("one", b"GGUF1"), ("two", b"GGUF2")):
        (tmp_path / name).mkdir()
        folders.append(hf_dir(registry, add_model(registry, str(_gguf(tmp_path / name, content)), name=name)))
    first, second = folders
    assert first != second and len(conversions) == 2


def test_off_keeps_the_folder_in_the_workspace(tmp_path, monkeypatch, conversions):
    monkeypatch.setenv("WATT_MODEL_CACHE", "off")
    assert model_cache_root() is None
    registry = Registry(tmp_path / "ws")
    model = add_model(registry, str(_gguf(tmp_path)), name="m")
    assert hf_dir(registry, model) == registry.home / "cache" / "hf" / model.id


def test_a_workspace_folder_made_before_the_shared_cache_is_still_used(tmp_path, monkeypatch, conversions):
    monkeypatch.setenv("WATT_MODEL_CACHE", str(tmp_path / "shared"))
    registry = Registry(tmp_path / "ws")
    model = add_model(registry, str(_gguf(tmp_path)), name="m")
    old = registry.home / "cache" / "hf" / model.id
    old.mkdir(parents=True)
    (old / "config.json").write_text("{}")
    assert hf_dir(registry, model) == old and not conversions


def test_prepare_names_packaged_models_only(monkeypatch, tmp_path):
    from wattlm.errors import WattError
    from wattlm.models.prepare import prepare

    monkeypatch.setenv("WATT_MODEL_CACHE", str(tmp_path / "shared"))
    with pytest.raises(WattError, match="not a packaged model: nope"):
        prepare(["nope"])
    monkeypatch.setenv("WATT_MODEL_CACHE", "off")
    assert prepare(["nope"]) == []  # nothing to prepare without the shared cache
