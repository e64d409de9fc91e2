"""The repository's own text files: no merge left half done."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A line that git writes around a conflict: seven marker characters at the start, then a space or the end.
CONFLICT = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    suffixes = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".sh", ".html", ".js", ".css", ".json", ".jsonl"}
    return [ROOT / name for name in listed.stdout.splitlines() if Path(name).suffix in suffixes]


def test_no_merge_conflict_markers():
    files = tracked_text_files()
    assert files, "git ls-files listed no text files"
    marked = [f"{path.relative_to(ROOT)}:{text[:match.start()].count(chr(10)) + 1}"
              for path in files if path.is_file()
              for text in [path.read_text(encoding="utf-8", errors="replace")]
              for match in [CONFLICT.search(text)] if match]
    assert not marked, f"merge conflict markers left in: {', '.join(marked)}"
