from wattlm.cache import files_fingerprint, fingerprint


def test_fingerprint_is_stable_and_sensitive():
    assert fingerprint("a", {"x": 1, "y": 2}) == fingerprint("a", {"y": 2, "x": 1})
    assert fingerprint("a", {"x": 1}) != fingerprint("a", {"x": 2})


def test_files_fingerprint_tracks_content_and_names_not_location(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / "a.txt").write_text("same")
    assert files_fingerprint([one]) == files_fingerprint([two])
    (two / "a.txt").write_text("changed")
    assert files_fingerprint([one]) != files_fingerprint([two])
    (one / "b.txt").write_text("")
    assert files_fingerprint([one]) != files_fingerprint([tmp_path / "one" / "a.txt"])


def test_content_key_is_the_cache_key_or_the_files(tmp_path):
    from wattlm.cache import content_key, files_key
    from wattlm.registry import Registry

    registry = Registry(tmp_path / "ws")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.gguf").write_bytes(b"GGUF weights")
    (tmp_path / "m" / "other.txt").write_text("not part of the model")
    keyed = registry.register("dataset", "d", path=tmp_path / "m", cache_key="k1")
    assert content_key(keyed) == "k1"
    # A row without a key (older workspaces): its one GGUF file's bytes, not the folder around it.
    old = registry.register("model", "m", path=tmp_path / "m", format="gguf", meta={"file": "model.gguf"})
    assert content_key(old) == files_key("model", [tmp_path / "m" / "model.gguf"])


def test_without_paths_replaces_named_files_by_their_bytes(tmp_path):
    from wattlm.cache import without_paths

    for clone in ("a", "b"):
        (tmp_path / clone).mkdir()
        (tmp_path / clone / "evals.jsonl").write_text('{"question": "q"}')
    settings = lambda clone: {"eval_sets": [str(tmp_path / clone / "evals.jsonl")],  # noqa: E731
                              "sha": {str(tmp_path / clone / "evals.jsonl"): "x"}, "seed": 0}
    portable = [without_paths(settings(c), [tmp_path / c / "evals.jsonl"]) for c in ("a", "b")]
    assert portable[0] == portable[1] and str(tmp_path) not in str(portable[0])
    (tmp_path / "b" / "evals.jsonl").write_text('{"question": "other"}')
    assert without_paths(settings("b"), [tmp_path / "b" / "evals.jsonl"]) != portable[0]
