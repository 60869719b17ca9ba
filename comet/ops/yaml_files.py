"""Reading and writing the render step's YAML files (PyYAML, from the ops extra)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from comet.ops.extras import MissingExtra
from comet.ops.rule_transforms import RenderError

try:
    import yaml
except ModuleNotFoundError as exc:  # the bot's own install has no PyYAML: say which extra has it
    raise MissingExtra("PyYAML") from exc


def load_yaml(path: Path) -> Any:
    """The document in ``path``; RenderError (naming the file) when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RenderError(f"{path}: source file missing") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: not valid YAML: {exc}") from exc


def header(source: str) -> str:
    """The first line of a rendered file: where it came from, so nobody edits the copy."""
    return f"# Rendered by comet.ops.render from {source}. Edit the source, not this file.\n"


class _Dumper(yaml.SafeDumper):
    """Readable output: no ``&id001`` anchors for repeated values, multi-line strings as ``|`` blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Write atomically (a Prometheus reloading its config never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
