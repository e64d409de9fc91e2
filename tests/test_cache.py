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
