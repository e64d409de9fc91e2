"""wattlm.synth: large -> small. A teacher model turns corpus passages into grounded SFT examples.

corpus -> `chunking` -> prompts (files under `prompts/`) -> `teachers` -> `parsing` -> `filters`
-> a dataset artifact of chat examples whose lineage names the corpus and the teacher.
"""

from wattlm.synth.config import SynthConfig

__all__ = ["SynthConfig"]
