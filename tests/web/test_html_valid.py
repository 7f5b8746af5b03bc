"""Every kind of page is valid HTML, and the stylesheet valid CSS, by the Nu Html Checker
(the W3C validator, `vnu.jar`, which `.ci/run` installs from the npm registry)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fnhub.hub.web.render import ASSETS
from tests.helpers import require_file
from tests.hub.factories import Publisher, auth
from tests.web.factories import EVIL_README, publish_with_readme

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow

DEFAULT_JAR = Path.home() / ".cache/fnhub-ci/vnu/node_modules/vnu-jar/build/dist/vnu.jar"


def _vnu() -> list[str]:
    jar = require_file(Path(os.environ.get("VNU_JAR", DEFAULT_JAR)), "the Nu Html Checker")
    java = shutil.which("java")
    require_file(Path(java) if java else None, "java")
    return [str(java), "-jar", str(jar)]


def test_pages_and_stylesheet_are_valid(catalog: TestClient, client: TestClient,
                                        alice: Publisher, tmp_path: Path) -> None:
    command = _vnu()
    publish_with_readme(alice, "evil", "1.0.0", EVIL_README)
    publish_with_readme(alice, "evil", "1.1.0", EVIL_README)
    client.post("/api/v1/functions/alice/evil/versions/1.0.0/yank",
                json={"reason": "broken"}, headers=auth(alice.token))
    pages = {
        "home": catalog.get("/"),
        "filtered": catalog.get("/?q=data&category=data-preparation&kind=job&sort=updated"),
        "empty": catalog.get("/?q=nothing-matches-this"),
        "namespace": catalog.get("/library"),
        "function": catalog.get("/library/describe"),
        "version": catalog.get("/library/describe/1.1.0"),
        "not-found": catalog.get("/library/describ"),
        "bad-request": catalog.get("/?sort=bogus"),
        "readme-attack": client.get("/alice/evil"),
        "yanked": client.get("/alice/evil/1.0.0"),
    }
    files = []
    for name, response in pages.items():
        assert response.headers["content-type"].startswith("text/html"), name
        path = tmp_path / f"{name}.html"
        path.write_text(response.text)
        files.append(str(path))
    css = tmp_path / "site.css"
    css.write_bytes(ASSETS["site.css"].body)
    result = subprocess.run([*command, "--errors-only", "--format", "json", "--also-check-css",
                             *files, str(css)], capture_output=True, text=True, timeout=120,
                            check=False)
    messages = json.loads(result.stderr or result.stdout)["messages"]
    problems = [f"{Path(m.get('url', '?')).name}:{m.get('lastLine')}: {m['message']}"
                for m in messages]
    assert problems == [], "\n".join(problems)
