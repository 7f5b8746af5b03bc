"""`fnhub.lock`: what each requested URI resolved to (exact version and digest), for `--locked`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from fnhub.core.errors import InvalidInput, NotFound
from fnhub.store import write_atomic

LOCK_FILE = "fnhub.lock"


class LockFile(BaseModel):
    version: int = 1
    functions: dict[str, str] = Field(default_factory=dict)  # requested URI -> pinned URI

    @classmethod
    def read(cls, path: Path) -> LockFile:
        if not path.is_file():
            return cls()
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise InvalidInput(f"{path}: not a valid lock file: {exc.errors()[0]['msg']}") from None

    def write(self, path: Path) -> None:
        write_atomic(path, self.model_dump_json(indent=2).encode() + b"\n")

    def pinned(self, uri: str, path: Path) -> str:
        if uri not in self.functions:
            raise NotFound(f"{uri} is not in {path}", hint="run `hub install` without --locked")
        return self.functions[uri]
