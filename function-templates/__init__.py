"""fnhub's built-in function templates (cookiecutter), shipped as package data.

Each subfolder is one template; `fnhub.templates` lists and bakes them (`hub new`).
"""
