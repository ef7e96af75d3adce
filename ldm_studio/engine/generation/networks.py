"""The networks stage: the prompt's ``<lora:…>`` tags become the model's weights, and the embeddings
its text names become vectors the conditioning stage can insert.

LoRAs are merged into the weights by ``engine.lora.LoraStack``: a generation with other weights, or
with none, only rewrites the layers that change, and a LoRA-free generation after one has the
original weights bit for bit. A tag naming no file, a LoRA for another family, a LoRA weight of
``nan``: each stops the generation with a sentence — a file that silently changes nothing is worse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.lora import HashCache, LoraStack, ModelParts
from ldm_studio.engine.lora.hashing import short_hash
from ldm_studio.engine.lora.library import lora_sha256
from ldm_studio.engine.networks import NETWORK_FILES_KEY, NetworkLibrary
from ldm_studio.engine.prompts import Embedding, ExtraNetworkTag, parse_prompt
from ldm_studio.engine.request import GenerationRequest

log = logging.getLogger(__name__)

LORA_TAG_KINDS = ("lora", "lyco")


@dataclass(frozen=True)
class PreparedNetworks:
    """What the conditioning and record stages need from this stage."""

    embeddings: tuple[Embedding, ...] = ()
    loras_record: tuple[dict[str, Any], ...] = ()
    embeddings_record: tuple[dict[str, Any], ...] = ()
    notices: tuple[str, ...] = ()
    text_encoders_changed: bool = False
    signature: tuple = field(default=())  # part of the text-encoding cache key

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if self.loras_record:
            record["loras"] = list(self.loras_record)
        if self.embeddings_record:
            record["embeddings"] = list(self.embeddings_record)
        if self.notices:
            record["notices"] = list(self.notices)
        return record


def lora_stack(model: LoadedModel) -> LoraStack:
    """The model's LoRA state, made on first use (a model never given a LoRA pays nothing)."""
    if model.loras is None:
        model.loras = LoraStack(ModelParts.from_pipe(model.pipe), model_family=model.family)
    return model.loras


def library_for(request: GenerationRequest, library: NetworkLibrary | None) -> NetworkLibrary:
    extra = [Path(path) for path in request.extras.get(NETWORK_FILES_KEY, []) or []]
    if library is None:
        return NetworkLibrary.default(extra)
    return NetworkLibrary(library.lora_folders, library.embedding_folders, [*library.extra_files, *extra])


def prepare_networks(
    model: LoadedModel,
    request: GenerationRequest,
    tags: tuple[ExtraNetworkTag, ...],
    texts: list[str],
    library: NetworkLibrary | None = None,
    hash_cache: HashCache | None = None,
) -> PreparedNetworks:
    """Apply exactly the tags' LoRAs (none: every patched layer back to its original) and read the
    embeddings named in ``texts``."""
    library = library_for(request, library)
    lora_tags = [tag for tag in tags if tag.kind in LORA_TAG_KINDS]
    other = sorted({tag.kind for tag in tags if tag.kind not in LORA_TAG_KINDS})
    if other:
        log.info("ignoring extra-network tags of kinds %s (not supported)", ", ".join(other))
    hashes = hash_cache or HashCache.default()
    uses, loras_record = [], []
    if lora_tags or model.loras is not None:
        stack = lora_stack(model)
        files = library.loras() if lora_tags else {}
        for tag in lora_tags:
            path = library.lora_path(tag.name, files)
            if path is None:
                raise GenerationError(
                    f"No LoRA named '{tag.name}' is in your LoRA folders ({_folders(library.lora_folders)}): "
                    "add its folder in the LoRA picker, or remove the tag."
                )
            network = stack.load(path)
            uses.append((network, tag.te_weight, tag.unet_weight))
            digest = lora_sha256(path, network.metadata, hashes)
            loras_record.append(
                {
                    "name": tag.name,
                    "path": str(path),
                    "hash": short_hash(digest),
                    "weight": tag.te_weight,
                    **({"unet_weight": tag.unet_weight} if tag.unet_weight != tag.te_weight else {}),
                }
            )
        report = stack.apply(uses)
        changed, notices = report.text_encoders_changed, report.notices
    else:
        changed, notices = False, ()
    widths = ModelParts.from_pipe(model.pipe).text_widths
    embeddings, embeddings_record, skipped = _read_embeddings(library, texts, hashes, widths)
    notices = (*notices, *skipped)
    signature = (
        tuple((record["path"], record["weight"], record.get("unet_weight")) for record in loras_record),
        tuple((record["path"], record["hash"]) for record in embeddings_record),
    )
    return PreparedNetworks(
        tuple(embeddings),
        tuple(loras_record),
        tuple(embeddings_record),
        tuple(notices),
        changed,
        signature,
    )


def prepare_flow_networks(
    model: LoadedModel, request: GenerationRequest, library: NetworkLibrary | None = None
) -> PreparedNetworks:
    """SD 3 / FLUX: the prompt's LoRAs, as for SD models (no embeddings: none are made for their encoders)."""
    tags = parse_prompt(request.prompt, request.steps).networks
    networks = prepare_networks(model, request, tags, [], library)
    if networks.text_encoders_changed:
        model.embeddings.clear()  # flow encodings are cached by prompt text, which says nothing of weights
    return networks


def _read_embeddings(
    library: NetworkLibrary, texts: list[str], hashes: HashCache, text_widths: tuple[int, ...]
) -> tuple[list[Embedding], list[dict[str, Any]], list[str]]:
    """The usable embeddings the texts name, their records, and a notice for each one skipped.

    One made for another family (its widths are not the text encoders') is skipped as A1111 skips
    it: its name is then plain words, and the picker marks it; the notice goes to the log and record.
    """
    from ldm_studio.engine.embeddings import EmbeddingError, check_fits, read_embedding, ti_sha256

    embeddings, records, skipped = [], [], []
    for name, path in sorted(library.embeddings_named_in(texts).items()):
        try:
            read = read_embedding(path)
        except EmbeddingError as error:
            raise GenerationError(f"The embedding '{name}' cannot be used: {error}") from error
        try:
            check_fits(read.embedding, text_widths)
        except EmbeddingError as error:
            skipped.append(f"Embedding '{name}' skipped: {error}")
            log.info("%s", skipped[-1])
            continue
        # the prompt names it by the file's name, whatever token it was trained with
        embeddings.append(Embedding(name, read.embedding.vectors))
        records.append({"name": name, "path": str(path), "hash": short_hash(ti_sha256(path, hashes))})
    return embeddings, records, skipped


def _folders(folders: list[Path]) -> str:
    return ", ".join(str(folder) for folder in folders) or "none set"
