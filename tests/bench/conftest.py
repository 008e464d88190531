"""The bench tests run the real server around the serving tests' small model."""

from tests.serving.conftest import model_dir  # noqa: F401 (a fixture)
