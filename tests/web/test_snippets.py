"""The copyable snippets: URIs, version ranges, and arguments taken from the manifest."""

from __future__ import annotations

from typing import Any

from fnhub.hub.web.snippets import compatible_range, function_uri, python_name, snippets


def _manifest(inputs: list[dict[str, Any]], examples: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    return {"spec": {"inputs": inputs, "examples": examples or []}}


def test_uris_leave_out_the_library_namespace() -> None:
    assert function_uri("library", "describe") == "hub://describe"
    assert function_uri("alice", "clean", "1.2.0") == "hub://alice/clean:1.2.0"
    assert compatible_range("1.4.2") == "^1.4" and compatible_range("0.3.1") == "^0.3"


def test_python_names_are_identifiers() -> None:
    assert python_name("load-dataset") == "load_dataset"
    assert python_name("my.fn") == "my_fn"
    assert python_name("3d-plot") == "fn_3d_plot"
    assert python_name("import") == "import_"


def test_required_inputs_get_placeholders() -> None:
    inputs = [{"name": "table", "type": "dataset"}, {"name": "column", "type": "str"},
              {"name": "k", "type": "int", "default": 3}]
    install, python, run = snippets("alice", "top-k", "2.1.0", _manifest(inputs), pinned=False)
    assert install.code == "hub install hub://alice/top-k"
    assert python.code == ('import fnhub\n\ntop_k = fnhub.import_function("hub://alice/top-k:^2.1")'
                           '\nout = top_k(table="PATH", column="VALUE")')
    assert run.code == "hub run hub://alice/top-k:2.1.0 -i table=PATH -p column=VALUE"


def test_example_values_are_used_and_quoted() -> None:
    inputs = [{"name": "path", "type": "file"}, {"name": "cols", "type": "list", "default": []},
              {"name": "flag", "type": "bool", "default": False}]
    example = [{"inputs": {"path": "my data.csv", "cols": ["a", "b"], "flag": True}}]
    _, python, run = snippets("library", "pick", "1.0.0", _manifest(inputs, example),
                              pinned=True)
    assert 'fnhub.import_function("hub://pick:1.0.0")' in python.code
    assert "pick(path=\"my data.csv\", cols=['a', 'b'], flag=True)" in python.code
    assert run.code == ("hub run hub://pick:1.0.0 -i 'path=my data.csv' "
                        "-p 'cols=[\"a\", \"b\"]' -p flag=true")
