"""Teachers: an OpenAI-compatible endpoint, or a GGUF model run in-process."""

from wattlm.synth.teachers.base import Teacher, TeacherPrompt, TeacherStyle

__all__ = ["Teacher", "TeacherPrompt", "TeacherStyle"]
