"""Reuse finds an image's LoRAs and embeddings by name, then by A1111's hash; the rest is named once."""

from __future__ import annotations

from pathlib import Path

from ldm_studio.app.network_entries import NetworkEntry
from ldm_studio.app.network_resolution import resolve_networks, wanted_networks
from ldm_studio.gallery.networks import NetworkRef

FOX_SHA = "a1b2c3d4e5f6" + "0" * 52
HANDS_SHA = "ffeeddccbbaa" + "1" * 52


def library(hashed: bool = True) -> list[NetworkEntry]:
    return [
        NetworkEntry("lora", "fox_v2", Path("/l/fox_v2.safetensors"), sha256=FOX_SHA if hashed else ""),
        NetworkEntry("lora", "ink", Path("/l/ink.safetensors"), alias="ink_style_final"),
        NetworkEntry("embedding", "easynegative_renamed", Path("/e/x.safetensors"), sha256=HANDS_SHA),
    ]


def test_found_by_name_or_alias_needs_no_hash():
    asked = []
    wanted = wanted_networks("a <lora:ink:0.7> <lora:ink_style_final:1>", (), ())
    result = resolve_networks("p", "n", wanted, library(), lambda entry: asked.append(entry) or "")
    assert result.missing == () and result.renamed == () and result.message == ""
    assert asked == []  # nothing was hashed


def test_a_renamed_lora_is_found_by_hash_and_the_tag_rewritten():
    prompt = "a fox, <lora:fox_style:0.8>, <lora:fox_style_b:1>"
    wanted = wanted_networks(prompt, (NetworkRef("fox_style", "lora", FOX_SHA[:12]),), ())
    result = resolve_networks(prompt, "", wanted, library(), lambda entry: entry.sha256)
    assert result.prompt == "a fox, <lora:fox_v2:0.8>, <lora:fox_style_b:1>"
    assert [(r.old, r.new) for r in result.renamed] == [("fox_style", "fox_v2")]
    assert [ref.name for ref in result.missing] == ["fox_style_b"]
    assert "fox_style is fox_v2 in your library" in result.note


def test_hashes_are_computed_lazily_only_when_a_name_is_missing():
    computed = []

    def hash_of(entry: NetworkEntry) -> str:
        computed.append(entry.name)
        return FOX_SHA if entry.name == "fox_v2" else "9" * 64

    prompt = "<lora:fox_style:1>"
    wanted = wanted_networks(prompt, (NetworkRef("fox_style", "lora", FOX_SHA[:12]),), ())
    result = resolve_networks(prompt, "", wanted, library(hashed=False), hash_of)
    assert result.prompt == "<lora:fox_v2:1>" and computed == ["fox_v2"]  # stopped at the match
    assert resolve_networks("<lora:ink:1>", "", wanted_networks("<lora:ink:1>", (), ()), library(), hash_of)
    assert computed == ["fox_v2"]


def test_an_embedding_found_by_hash_is_renamed_in_both_prompts_as_a_whole_word():
    wanted = wanted_networks("", (), (NetworkRef("bad-hands", "embedding", HANDS_SHA[:12]),))
    result = resolve_networks(
        "bad-hands-free art", "bad-hands, blurry", wanted, library(), lambda entry: entry.sha256
    )
    assert result.prompt == "bad-hands-free art"  # another word that only starts the same way
    assert result.negative_prompt == "easynegative_renamed, blurry"
    assert result.missing == ()


def test_what_is_missing_is_named_in_one_sentence():
    wanted = wanted_networks(
        "a fox <lora:fox_style:0.8>",
        (NetworkRef("fox_style", "lora", "123456789abc"),),
        (NetworkRef("bad-hands", "embedding", "cba987654321"),),
    )
    result = resolve_networks(
        "a fox <lora:fox_style:0.8>", "bad-hands", wanted, library(), lambda e: e.sha256
    )
    assert result.message == (
        "Not in your library: fox_style (LoRA), bad-hands (embedding) — the rest was reused."
    )
    assert result.prompt == "a fox <lora:fox_style:0.8>" and result.source == (result.prompt, "bad-hands")


def test_each_network_is_wanted_once_in_the_order_met():
    wanted = wanted_networks(
        "<lora:a:1> <lora:b:1> <lora:a:0.5>",
        (NetworkRef("b", "lora", "abcabcabcabc"), NetworkRef("c", "lora")),
        (NetworkRef("e", "embedding"),),
    )
    assert [(ref.kind, ref.name, ref.hash) for ref in wanted] == [
        ("lora", "a", ""),
        ("lora", "b", "abcabcabcabc"),
        ("lora", "c", ""),
        ("embedding", "e", ""),
    ]
