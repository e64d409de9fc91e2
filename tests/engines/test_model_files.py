"""A registry model name resolves to the GGUF file (or HF folder) its engine loads."""

import pytest

from wattlm.engines.model_files import served_file
from wattlm.errors import WattError
from wattlm.registry import Registry
from wattlm.serve.launch import model_card


def test_model_resolves_to_its_smallest_good_export(tmp_path):
    registry = Registry(tmp_path / "ws")
    base = registry.register("model", "base", path=tmp_path, tier="foundation", format="hf")
    industry = registry.register("model", "grid", path=tmp_path, tier="industry", format="hf",
                                 parents=[(base.id, "parent")])
    with pytest.raises(WattError, match="no GGUF export yet"):
        served_file(registry, "grid")
    for quant in ("f16", "q8_0", "q4_k_m"):
        with registry.staging() as staged:
            (staged / f"model-{quant}.gguf").write_bytes(b"GGUF")
            registry.register("export", f"grid-{quant}", staged=staged, tier="industry", format="gguf",
                              parents=[(industry.id, "parent")], meta={"file": f"model-{quant}.gguf", "quant": quant})
    art, gguf = served_file(registry, "grid")
    assert art.id == industry.id and gguf.name == "model-q4_k_m.gguf"
    art, gguf = served_file(registry, "grid-q8_0")  # an export by name is served as itself
    assert art.kind == "export" and gguf.name == "model-q8_0.gguf"
    card = model_card(registry, industry, gguf)
    assert card == {"id": "grid", "artifact_id": industry.id, "tier": "industry", "parent": base.id,
                    "gguf": "model-q8_0.gguf", "created": int(industry.created)}


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(WattError, match="unknown model 'ghost'"):
        served_file(Registry(tmp_path / "ws"), "ghost")


def test_quality_decides_which_export_is_served(tmp_path):
    registry = Registry(tmp_path / "ws")
    model = registry.register("model", "grid", path=tmp_path, tier="industry", format="hf")
    measured = {"f16": (500, 43.1), "q8_0": (280, 43.4), "q4_k_m": (250, 57.9)}  # from the Gemma demo run
    for quant, (size, ppl) in measured.items():
        with registry.staging() as staged:
            (staged / f"model-{quant}.gguf").write_bytes(b"GGUF")
            registry.register("export", f"grid-{quant}", staged=staged, format="gguf", parents=[(model.id, "parent")],
                              meta={"file": f"model-{quant}.gguf", "quant": quant}, metrics={"size_mb": size, "ppl": ppl})
    _, gguf = served_file(registry, "grid")
    assert gguf.name == "model-q8_0.gguf"  # q4_k_m is smaller but 34 % worse
