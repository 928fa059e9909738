"""Students: the ``Student`` wrapper, ``load_student``, the tiny preset, GGUF conversion, ``models pull``, LoRA."""

from cotdistill.models.loading import StudentConfig, load_student
from cotdistill.models.lora import StudentLoRAConfig
from cotdistill.models.student import Student
from cotdistill.models.tiny import TinyConfig

__all__ = ["StudentLoRAConfig", "Student", "StudentConfig", "TinyConfig", "load_student"]
