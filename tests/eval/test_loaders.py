import json

import pytest

from wattlm.errors import NotFound, WattError
from wattlm.eval.generative_qa import GenerativeQATask
from wattlm.eval.loaders import TaskSettings, load_task
from wattlm.eval.multiple_choice import MultipleChoiceTask
from wattlm.eval.perplexity import PerplexityTask


def _jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def test_jsonl_multiple_choice_accepts_index_letter_and_text(tmp_path):
    file = _jsonl(tmp_path / "grid-mc.jsonl", [
        {"question": "额定频率？", "choices": ["50赫兹", "60赫兹"], "answer": 0},
        {"question": "额定电压？", "choices": ["10千伏", "110千伏"], "answer": "B"},
        {"question": "Which gas?", "choices": ["SF6", "air"], "answer": "SF6"},
    ])
    task = load_task(file)
    assert isinstance(task, MultipleChoiceTask) and task.name == "grid-mc"
    assert [i.answer for i in task.items] == [0, 1, 0]
    assert task.items[0].prompt == "问题：额定频率？\n答案：" and task.items[0].delimiter == ""
    assert task.items[2].prompt == "Question: Which gas?\nAnswer:" and task.items[2].delimiter == " "


def test_jsonl_open_book_qa_and_fewshot(tmp_path):
    file = _jsonl(tmp_path / "qa.jsonl", [
        {"question": "油温上限？", "answer": "85度", "context": "主变上层油温不超过85度。"},
        {"question": "巡视周期？", "answer": ["每周", "每周一次"], "context": "变电站每周巡视一次。"},
    ])
    task = load_task(file, TaskSettings(num_fewshot=1, max_new_tokens=12))
    assert isinstance(task, GenerativeQATask) and task.max_new_tokens == 12
    assert task.items[1].answers == ["每周", "每周一次"]
    first = task.items[0].prompt
    # The other item, solved, comes first; the item's own passage and question close the prompt.
    assert first.index("变电站每周巡视一次") < first.index("每周\n\n") < first.index("主变上层油温不超过85度")
    assert first.endswith("问题：油温上限？\n答案：")


@pytest.mark.parametrize("record, field", [
    ({"question": "q", "choices": ["a", "b"], "answer": 5}, "out of range"),
    ({"question": "q", "choices": ["a"], "answer": 0}, "choices"),
    ({"question": "q", "answer": 3}, "'answer'"),
    ({"prompt": "x"}, "cannot tell"),
])
def test_jsonl_errors_name_record_and_field(tmp_path, record, field):
    file = _jsonl(tmp_path / "bad.jsonl", [record])
    with pytest.raises(WattError, match=f"bad.jsonl record 1.*{field}"):
        load_task(file)


def test_text_folder_is_perplexity(tmp_path):
    (tmp_path / "a.txt").write_text("电网调度规程。", encoding="utf-8")
    task = load_task(tmp_path, TaskSettings(seq_len=64))
    assert isinstance(task, PerplexityTask) and task.items == ["电网调度规程。"] and task.seq_len == 64
    with pytest.raises(NotFound):
        load_task(tmp_path / "missing.jsonl")


def test_harness_yaml_multiple_choice(tmp_path):
    _jsonl(tmp_path / "data.jsonl", [
        {"q": "Grid frequency?", "opts": ["50 Hz", "7 Hz"], "label": "A"},
        {"q": "Insulating gas?", "opts": ["neon", "SF6"], "label": "B"},
    ])
    (tmp_path / "task.yaml").write_text(
        "task: grid_arc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: data.jsonl\n"
        "test_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: \"Question: {{q}}\\nAnswer:\"\n"
        "doc_to_target: \"{{ ['A', 'B'].index(label) }}\"\ndoc_to_choice: opts\n"
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    task = load_task(tmp_path / "task.yaml")
    assert isinstance(task, MultipleChoiceTask) and task.name == "grid_arc"
    assert [i.answer for i in task.items] == [0, 1]
    assert task.items[1].prompt == "Question: Insulating gas?\nAnswer:" and task.items[1].choices == ["neon", "SF6"]
    assert task.items[0].delimiter == " "


def test_harness_yaml_generate_until(tmp_path):
    _jsonl(tmp_path / "d.jsonl", [{"passage": "Oil is tested yearly.", "question": "How often?", "ans": "yearly"}])
    (tmp_path / "t.yaml").write_text(
        "task: oil\ndataset_path: d.jsonl\noutput_type: generate_until\n"
        "doc_to_text: \"{{passage}}\\nQ: {{question}}\\nA:\"\ndoc_to_target: ans\n"
        "generation_kwargs:\n  until: [\"\\n\", \"Q:\"]\n  max_gen_toks: 7\n", encoding="utf-8")
    task = load_task(tmp_path / "t.yaml")
    assert isinstance(task, GenerativeQATask) and task.items[0].answers == ["yearly"]
    assert task.max_new_tokens == 7 and task.stop == ("Q:",)


@pytest.mark.parametrize("body, field", [
    ("process_docs: !function utils.process\n", "process_docs"),
    ("dataset_path: allenai/ai2_arc\n", "dataset_path"),
    ("output_type: loglikelihood_rolling\n", "output_type"),
    ("frobnicate: 1\n", "frobnicate"),
])
def test_harness_yaml_refusals_name_the_field(tmp_path, body, field):
    _jsonl(tmp_path / "d.jsonl", [{"q": "x", "a": "y"}])
    base = {"dataset_path": "dataset_path: d.jsonl\n", "output_type": "output_type: generate_until\n"}
    text = "".join(v for k, v in base.items() if k != field) + body + "doc_to_text: q\ndoc_to_target: a\n"
    (tmp_path / "t.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(WattError, match=f"field {field}"):
        load_task(tmp_path / "t.yaml")


def test_harness_yaml_template_error_names_record(tmp_path):
    _jsonl(tmp_path / "d.jsonl", [{"q": "x", "a": "y"}])
    (tmp_path / "t.yaml").write_text("dataset_path: d.jsonl\ndoc_to_text: \"{{ missing }}\"\ndoc_to_target: a\n")
    with pytest.raises(WattError, match="doc_to_text on record 1"):
        load_task(tmp_path / "t.yaml")
