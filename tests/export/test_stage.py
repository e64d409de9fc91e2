"""export_model through the one cache path: each GGUF file registered as it is finished, so a crash
part-way loses only the file in progress and a rerun reuses the f16 file and every finished quant."""

import pytest

import wattlm.export.gguf as gguf
from wattlm.export.stage import export_model
from wattlm.models.store import add_model
from wattlm.registry import Registry


def test_a_crashed_export_reuses_the_finished_files(tiny_model_dir, tmp_path, monkeypatch):
    registry = Registry(tmp_path / "ws")
    model = add_model(registry, str(tiny_model_dir), name="tiny")
    made = []
    real_convert, real_quantize = gguf.convert_f16, gguf.quantize

    def convert(*args, **kwargs):
        made.append("f16")
        return real_convert(*args, **kwargs)

    def quantize(src, dst, quant, *args, **kwargs):
        if quant == "q4_0" and "crash" not in made:
            made.append("crash")
            raise KeyboardInterrupt  # the run is stopped while the second quant is being written
        made.append(quant)
        return real_quantize(src, dst, quant, *args, **kwargs)

    monkeypatch.setattr(gguf, "convert_f16", convert)
    monkeypatch.setattr(gguf, "quantize", quantize)
    settings = dict(check_prompt="The substation", check_tokens=4)
    with pytest.raises(KeyboardInterrupt):
        export_model(registry, model, ["q8_0", "q4_0"], **settings)
    assert sorted(a.meta["quant"] for a in registry.list("export")) == ["f16", "q8_0"]

    exports, reused = export_model(registry, model, ["q8_0", "q4_0"], **settings)
    assert not reused
    assert made == ["f16", "q8_0", "crash", "q4_0"]  # the rerun converted nothing and re-quantized nothing
    assert [e.meta["quant"] for e in exports] == ["f16", "q8_0", "q4_0"]
    assert len(registry.list("export")) == 3
    for export in exports:
        with open(export.path / export.meta["file"], "rb") as fh:
            assert fh.read(4) == b"GGUF"
    assert set(registry.get(model.id).metrics["export"]) == {"f16", "q8_0", "q4_0"}

    again, reused = export_model(registry, model, ["q8_0", "q4_0"], **settings)
    assert reused and [e.id for e in again] == [e.id for e in exports]
    assert made == ["f16", "q8_0", "crash", "q4_0"]
