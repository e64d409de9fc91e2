"""A task YAML reads only data inside its own folder: `..`, absolute paths and symlinks out are refused."""

from __future__ import annotations

import pytest

from wattlm.errors import WattError
from wattlm.eval.loaders import load_task

RECORD = '{"question": "Q?", "choices": ["a", "b"], "answer": 0}\n'
TASK = ("task: t\n{source}output_type: multiple_choice\ndoc_to_text: question\ndoc_to_choice: choices\n"
        "doc_to_target: answer\n")
JSON_SOURCE = "dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {file}\n"


@pytest.fixture
def folders(tmp_path):
    task_dir = tmp_path / "bench"
    task_dir.mkdir()
    (tmp_path / "secret.jsonl").write_text(RECORD, encoding="utf-8")
    (task_dir / "sub").mkdir()
    (task_dir / "sub" / "data.jsonl").write_text(RECORD, encoding="utf-8")
    return tmp_path, task_dir


def _task(task_dir, source: str):
    path = task_dir / "t.yaml"
    path.write_text(TASK.format(source=source), encoding="utf-8")
    return path


@pytest.mark.parametrize("make_source, field", [
    (lambda root: "dataset_path: ../secret.jsonl\n", "dataset_path"),
    (lambda root: f"dataset_path: {root / 'secret.jsonl'}\n", "dataset_path"),
    (lambda root: JSON_SOURCE.format(file="../secret.jsonl"), "dataset_kwargs.data_files"),
    (lambda root: JSON_SOURCE.format(file="link.jsonl"), "dataset_kwargs.data_files"),
])
def test_data_outside_the_yaml_folder_is_a_one_line_error(folders, make_source, field):
    root, task_dir = folders
    (task_dir / "link.jsonl").symlink_to(root / "secret.jsonl")
    path = _task(task_dir, make_source(root))
    with pytest.raises(WattError) as error:
        load_task(path)
    message = str(error.value)
    assert message.startswith(f"{path}: field {field}: ") and "outside the task file's folder" in message
    assert "\n" not in message


def test_data_in_a_subfolder_is_read(folders):
    _, task_dir = folders
    task = load_task(_task(task_dir, "dataset_path: sub/data.jsonl\n"))
    assert task.name == "t"
