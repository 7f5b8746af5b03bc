"""`hub build` without an engine: the build context, the Dockerfile, image names, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub import runtime
from fnhub.build import FUNCTION_DIR, dockerfile, labels, prepare_context
from fnhub.config import HubEntry
from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import load_manifest
from fnhub.core.signing import generate_key
from fnhub.images import function_image, image_tag, parse_image_ref
from fnhub.publish import publish_folder
from tests.helpers import CLI, write_function


def _folder(tmp_path: Path) -> Path:
    folder = write_function(tmp_path / "fn", name="scale", namespace="carol", version="1.2.0")
    manifest = folder / "function.yaml"
    manifest.write_text(manifest.read_text().replace(
        "description: Scale the value column of a CSV table",
        'description: "Scale $HOME \\"values\\"\\nof a CSV"'
    ) + '  requirements: ["numpy>=1.26"]\n  image: {base: "python:3.12-slim"}\n')
    (folder / ".fnhubignore").write_text("data/\n")
    (folder / "data").mkdir()
    (folder / "data" / "big.csv").write_text("value\n1\n")
    return folder


def test_the_context_holds_the_package_the_runtime_and_the_requirements(
        tmp_path: Path) -> None:
    context = prepare_context(_folder(tmp_path), tmp_path / "work")
    files = sorted(p.relative_to(context.path).as_posix()
                   for p in context.path.rglob("*") if p.is_file())
    assert files == ["Dockerfile", "function/.fnhubignore", "function/function.yaml",
                     "function/scale.py", "lib/fnhub/__init__.py", "lib/fnhub/runtime.py",
                     "requirements.txt"]
    assert (context.path / "lib/fnhub/runtime.py").read_bytes() == Path(
        runtime.__file__).read_bytes()
    assert (context.path / "requirements.txt").read_text() == "numpy>=1.26\n"
    assert context.package_digest.startswith("sha256:")


def test_the_dockerfile_follows_the_manifest(tmp_path: Path) -> None:
    manifest = load_manifest(_folder(tmp_path))
    text = dockerfile(manifest, "sha256:" + "ab" * 32)
    lines = text.splitlines()
    assert lines[0] == "FROM python:3.12-slim"
    assert "RUN python -m pip install --no-cache-dir -r /opt/fnhub/requirements.txt" in lines
    assert f"COPY function/ {FUNCTION_DIR}/" in lines
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "fnhub.runtime"]'
    # label values are quoted: no variable expansion, no line break, quotes escaped
    assert 'org.opencontainers.image.description="Scale \\$HOME \\"values\\" of a CSV"' in text
    assert labels(manifest, "sha256:x")["io.fnhub.package.digest"] == "sha256:x"


def test_image_names() -> None:
    assert str(function_image("http://127.0.0.1:8080", "alice", "clean", "1.0.0+build.7")
               ) == "127.0.0.1:8080/alice/clean:1.0.0_build.7"
    assert image_tag("2.0.0-rc.1") == "2.0.0-rc.1"
    with pytest.raises(InvalidInput, match="must not have a path"):
        function_image("https://example.com/hub", "alice", "clean", "1.0.0")
    ref = parse_image_ref("hub.example.com:5000/alice/clean:1.0.0")
    assert (ref.registry, ref.repository, ref.tag) == ("hub.example.com:5000", "alice/clean",
                                                       "1.0.0")
    for bad in ("alice/clean:1.0.0", "hub.example.com/alice/clean", "hub.example.com"):
        with pytest.raises(InvalidInput, match="invalid image reference"):
            parse_image_ref(bad)


@pytest.mark.slow
def test_without_an_engine_build_and_publish_fail_with_one_clear_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"unix://{tmp_path / 'no-engine.sock'}"
    cli = CLI(tmp_path / "user", "http://127.0.0.1:9", "fnhub_token",
              env_extra={"DOCKER_HOST": missing})
    cli.fails("build", str(_folder(tmp_path)), match="cannot reach a Docker Engine API")
    monkeypatch.setenv("DOCKER_HOST", missing)
    with pytest.raises(InvalidInput, match="cannot reach a Docker Engine API"):
        publish_folder(tmp_path / "fn", HubEntry(url="http://127.0.0.1:9", token="t"),
                       generate_key(), tmp_path / "publish", image=True)
