"""The engine: models, samplers, the generation loop and previews. Never imports Qt.

Importing it pins every Hugging Face library to offline mode before any of them is imported:
LDM Studio never downloads weights, configs or tokenizers.
"""

import os

for _flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ[_flag] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# transformers warns about optional torchvision image processors we never use
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
