"""Remove what the answers left out: the other CI provider's files, and the sample data.

cookiecutter runs this in the new project folder. All templates share this file: each one's
hooks/post_gen_project.py is a symlink to it (cookiecutter follows links; a wheel holds copies).
Each template names its sample files in `_sample_files` of its cookiecutter.json.
"""

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r'''{{ cookiecutter | tojson }}''')

CI_FILES = {"github": [".github"], "gitlab": [".gitlab-ci.yml"]}


def remove(relative: str) -> None:
    path = Path(relative)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


if __name__ == "__main__":
    for provider, paths in CI_FILES.items():
        if provider != ANSWERS["ci"]:
            for path in paths:
                remove(path)
    if not ANSWERS["sample_data"]:
        for path in ANSWERS.get("_sample_files", []):
            remove(path)
