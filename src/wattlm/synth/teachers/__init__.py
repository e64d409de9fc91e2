"""Teachers: an OpenAI-compatible endpoint, or a GGUF model run in-process (the table: resolve.TEACHERS)."""

from wattlm.synth.teachers.base import Teacher, TeacherBase, TeacherPrompt, TeacherSpec, TeacherStyle

__all__ = ["Teacher", "TeacherBase", "TeacherPrompt", "TeacherSpec", "TeacherStyle"]
