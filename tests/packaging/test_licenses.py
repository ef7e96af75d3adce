import tomllib

from ldm_studio.licenses import python_libraries, shipped_components
from ldm_studio.paths import resources_dir


def test_every_listed_licence_text_exists_when_its_component_ships():
    root = resources_dir()
    table = tomllib.loads((root / "licenses" / "components.toml").read_text(encoding="utf-8"))
    for entry in table["component"]:
        assert entry["name"] and entry["role"] and entry["license"] and entry["files"], entry
        if entry.get("only_with") and not (root / entry["only_with"]).exists():
            continue
        for name in entry["files"]:
            assert (root / name).is_file(), f"{entry['name']}: {name} is missing"


def test_components_apply_only_with_what_they_describe(tmp_path):
    (tmp_path / "licenses").mkdir()
    (tmp_path / "licenses" / "A.txt").write_text("terms of A")
    (tmp_path / "licenses" / "components.toml").write_text(
        '[[component]]\nname = "A"\nrole = "always"\nlicense = "MIT"\nfiles = ["licenses/A.txt"]\n'
        '[[component]]\nname = "M"\nrole = "a model"\nlicense = "CC-BY-4.0"\n'
        'files = ["models/m/README.md"]\nonly_with = "models/m"\n'
    )
    assert [component.name for component in shipped_components(tmp_path)] == ["A"]
    (tmp_path / "models" / "m").mkdir(parents=True)
    (tmp_path / "models" / "m" / "README.md").write_text("model card")
    components = shipped_components(tmp_path)
    assert [component.name for component in components] == ["A", "M"]
    assert "terms of A" in components[0].text() and "model card" in components[1].text()


def test_qt_notice_and_lgpl_text_ship():
    qt = next(component for component in shipped_components() if component.name.startswith("Qt"))
    assert qt.license == "LGPL-3.0-only"
    text = qt.text()
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in text and "Version 3" in text
    assert "Replacing the libraries" in text


def test_python_libraries_are_the_runtime_dependencies_with_their_licences():
    libraries = {library.name.lower(): library for library in python_libraries()}
    for needed in ("torch", "diffusers", "transformers", "pyside6_essentials", "numpy", "platformdirs"):
        assert needed in libraries, needed
    assert "pytest" not in libraries  # a test extra, not something LDM Studio runs on
    assert "ldm-studio" not in libraries
    assert "BSD-3-Clause" in libraries["torch"].license
    assert "Copyright" in libraries["torch"].text()
    assert "Apache" in libraries["diffusers"].text()
