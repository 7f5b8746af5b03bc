"""Small stdlib-only function folders for the pipeline tests (they never touch a hub)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml


def make_function(folder: Path, name: str, code: str, *, inputs: list[dict],
                  outputs: list[dict], requirements: list[str] | None = None) -> Path:
    """A function folder whose entrypoint is `main.py:main`."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "apiVersion": "fnhub/v1", "kind": "Function",
        "metadata": {"name": name, "namespace": "tests", "version": "1.0.0"},
        "spec": {"entrypoint": "main.py:main", "requirements": requirements or [],
                 "inputs": inputs, "outputs": outputs},
    }
    (folder / "function.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "main.py").write_text(textwrap.dedent(code))
    return folder


NUMBERS = """\
    import os
    import time
    from pathlib import Path


    def main(n, start=1, sleep=0.0):
        time.sleep(sleep)
        out = Path(os.environ["FNHUB_OUTPUT_DIR"]) / "numbers.csv"
        out.write_text("value\\n" + "".join(f"{start + i}\\n" for i in range(n)))
        print(f"wrote {n} numbers")
        return {"table": out, "count": n}
"""

NAP = """\
    import time


    def main(seconds, tag):
        time.sleep(seconds)
        return tag.upper()
"""

ADD = """\
    def main(a, b):
        return a + b
"""

BOOM = """\
    def main(table):
        print("reading", table.name)
        print("about to fail")
        raise ValueError("no good rows in " + table.name)
"""
