"""The reply journal: replies read back by prompt, a line cut short by a kill dropped, failures not kept."""

from wattlm.synth.journal import JournalledTeacher, ReplyJournal, prompt_hash
from wattlm.synth.teachers.base import TeacherPrompt

from .fake_teacher import CountingTeacher


def prompt(marker: str, seed: int = 0) -> TeacherPrompt:
    return TeacherPrompt(f"Passage: The {marker} substation.", max_tokens=64, temperature=0.7, seed=seed)


def test_recorded_replies_are_not_asked_again_and_a_cut_line_is_dropped(tmp_path):
    path = tmp_path / "replies.jsonl"
    journal = ReplyJournal(path)
    first = CountingTeacher()
    replies = JournalledTeacher(first, journal).complete([prompt("alpha"), prompt("north")])
    journal.close()
    assert first.calls == 2
    with open(path, "a") as fh:
        fh.write('{"prompt": "abc", "rep')  # what a kill -9 in the middle of a write leaves

    journal = ReplyJournal(path)
    again = CountingTeacher()
    teacher = JournalledTeacher(again, journal)
    assert teacher.complete([prompt("alpha"), prompt("south"), prompt("north")]) == [
        replies[0], teacher.journal.replies[prompt_hash(prompt("south"), "chat")], replies[1]]
    journal.close()
    assert again.calls == 1 and teacher.reused == 2
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(line.endswith("}") for line in lines)  # the cut line was removed
    # Another seed is another request: not served from the journal.
    assert prompt_hash(prompt("alpha", seed=1), "chat") != prompt_hash(prompt("alpha"), "chat")


def test_failed_requests_are_not_recorded(tmp_path):
    class Failing(CountingTeacher):
        def complete(self, prompts):
            self.calls += len(prompts)
            return [None for _ in prompts]

    journal = ReplyJournal(tmp_path / "replies.jsonl")
    teacher = JournalledTeacher(Failing(), journal)
    assert teacher.complete([prompt("alpha")]) == [None]
    assert teacher.complete([prompt("alpha")]) == [None]  # asked again: a rerun retries failures
    journal.close()
    assert teacher.calls == 2 and (tmp_path / "replies.jsonl").read_text() == ""
