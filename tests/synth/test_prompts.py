"""Every shipped prompt file parses and renders; a few-shot prompt ends exactly at its answer label."""

import pytest

from wattlm.errors import WattError
from wattlm.synth.prompts import PROMPT_DIR, load_prompt, parse_template, prompts_digest


@pytest.mark.parametrize("task", ["qa", "summary", "extract", "judge", "answer"])
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("style", ["chat", "completion"])
def test_shipped_prompts_render(task, lang, style):
    template = load_prompt(task, lang, style)
    text = template.render(passage="PASSAGE-TEXT", n=3, question="Q?", answer="A.")
    assert "PASSAGE-TEXT" in text and "$" not in text
    if style == "completion":
        assert template.stop and text.endswith(template.reply_prefix) and template.reply_prefix.strip()
        assert not text.endswith("\n") or task == "extract"
    else:
        assert template.reply_prefix == ""


def test_header_errors_name_the_prompt():
    with pytest.raises(WattError, match="bad.txt: header 'reply' must be"):
        parse_template("bad.txt", '## reply: "xml"\nbody')
    with pytest.raises(WattError, match="bad.txt: header 'stop' is not JSON"):
        parse_template("bad.txt", '## reply: "lines"\n## stop: [oops\nbody')
    with pytest.raises(WattError, match=r"no value for placeholder 'passage'"):
        parse_template("t.txt", '## reply: "json"\n${passage}').render()


def test_digest_changes_with_a_prompt(tmp_path):
    for path in PROMPT_DIR.glob("*.txt"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    before = prompts_digest(tmp_path)
    assert before == prompts_digest(PROMPT_DIR)
    (tmp_path / "qa.zh.fewshot.txt").write_text('## reply: "lines"\n## stop: ["\\n\\n"]\n资料：${passage}\n问题：')
    assert prompts_digest(tmp_path) != before
