import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def cpu_threads_as_the_app_uses_them():
    """torch threads as the app sets them (all cores but one): with every core, a suite that shares
    the CPU with another job crawls (bench/omp_wait.py measured ×54 for one image)."""
    from ldm_studio.engine.device import set_cpu_threads

    set_cpu_threads()


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """Every test gets its own config/data/cache/log folders: nothing touches the real user's."""
    monkeypatch.setenv("LDM_STUDIO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory):
    from tests.tiny_models import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_sd_v_folder(tmp_path_factory):
    from tests.tiny_models import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd-v", prediction_type="v_prediction")


@pytest.fixture(scope="session")
def tiny_model(tiny_sd_folder):
    """The tiny model loaded once per session; tests must not mutate it beyond its caches."""
    from ldm_studio.engine.loader import load_model

    return load_model(tiny_sd_folder, device="cpu")
