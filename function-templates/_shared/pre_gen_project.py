"""Refuse answers that would give a project `hub publish` or `hub pipeline run` cannot accept.

cookiecutter runs this before it writes any file and removes the project folder when it fails,
so a bad answer leaves nothing behind. The naming rules are fnhub's own (`fnhub.core.names`, design
§2); they are repeated here so the template also works with a plain `cookiecutter` that cannot
import fnhub, and fnhub's tests check that the two agree. All templates share this file: each
one's hooks/pre_gen_project.py is a symlink to it (cookiecutter follows links; a wheel holds
copies).
"""

import json
import keyword
import re
import sys

ANSWERS = json.loads(r'''{{ cookiecutter | tojson }}''')

MAX_LEN = 64
NAME_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
NAME_RULE = "lowercase letters and digits, separated by single '.', '_' or '-'"
NAMESPACE_RE = re.compile(r"^[a-z0-9]+([_-][a-z0-9]+)*$")
NAMESPACE_RULE = "lowercase letters and digits, separated by single '_' or '-'"
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def naming_problem(what: str, value: str, pattern: "re.Pattern[str]", rule: str) -> "str | None":
    if not value:
        return f"{what} must not be empty"
    if len(value) > MAX_LEN or not pattern.fullmatch(value):
        return f"invalid {what} {value!r}: must be {rule}, at most {MAX_LEN} characters"
    return None


def problems() -> "list[str]":
    found = [naming_problem("name", ANSWERS["name"], NAME_RE, NAME_RULE)]
    if "namespace" in ANSWERS:
        found.append(naming_problem("namespace", ANSWERS["namespace"], NAMESPACE_RE,
                                    NAMESPACE_RULE))
    if "version" in ANSWERS and not SEMVER_RE.fullmatch(ANSWERS["version"]):
        found.append(f"invalid version {ANSWERS['version']!r}: must be a SemVer 2.0 version "
                     "like 0.1.0")
    slug = ANSWERS["project_slug"]
    if not slug or slug in (".", "..") or "/" in slug or "\\" in slug:
        found.append(f"invalid project_slug {slug!r}: must be one folder name")
    module = ANSWERS.get("__module_name")
    if module is not None and keyword.iskeyword(module):
        found.append(f"name {ANSWERS['name']!r} gives the Python module {module!r}, which is a "
                     "Python keyword; choose another name")
    return [p for p in found if p]


if __name__ == "__main__":
    refused = problems()
    for problem in refused:
        print(problem, file=sys.stderr)
    sys.exit(1 if refused else 0)
