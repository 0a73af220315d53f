"""Read a policy file and the libraries it imports, detecting missing files and cycles."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sentra_lang import ast
from sentra_lang.diagnostics import Diagnostic, Related, diagnostic
from sentra_lang.parser import parse, parse_bytes
from sentra_lang.source import Source


@dataclass
class LoadedFile:
    """One parsed file. `name` is its path relative to the main file's folder (for tables)."""

    display: str
    name: str
    real: Path
    source: Source
    module: ast.Module | None


@dataclass
class Program:
    """The main file first, then every imported library, each once."""

    files: list[LoadedFile] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def main(self) -> LoadedFile:
        return self.files[0]

    def modules(self) -> list[tuple[LoadedFile, ast.Module]]:
        return [(f, f.module) for f in self.files if f.module is not None]


class FileUnreadable(Exception):
    """The main path cannot be read at all: a usage error, not a diagnostic."""


def load_text(text: str, path: str = "<string>") -> Program:
    """A program from source text; imports resolve relative to the current folder."""
    module, diagnostics = parse(text, path)
    real = Path(path).resolve() if path != "<string>" else Path.cwd() / "<string>"
    loaded = LoadedFile(path, os.path.basename(path), real, Source(path, text), module)
    program = Program([loaded], list(diagnostics))
    _load_imports(program, loaded, [real])
    return program


def load_file(path: str | os.PathLike[str]) -> Program:
    """A program from a file. Raises FileUnreadable when the file itself cannot be read."""
    display = os.fspath(path)
    try:
        data = Path(display).read_bytes()
    except (OSError, ValueError) as error:
        raise FileUnreadable(f"cannot read `{display}`: {_reason(error)}") from error
    module, diagnostics, source = parse_bytes(data, display)
    real = Path(display).resolve()
    loaded = LoadedFile(display, os.path.basename(display), real, source, module)
    program = Program([loaded], list(diagnostics))
    _load_imports(program, loaded, [real])
    return program


def _reason(error: Exception) -> str:
    if isinstance(error, IsADirectoryError):
        return "it is a folder"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return str(getattr(error, "strerror", None) or error)


def _load_imports(program: Program, importer: LoadedFile, chain: list[Path]) -> None:
    if importer.module is None:
        return
    main_dir = program.main.real.parent
    for item in importer.module.of_type(ast.Import):
        target = (importer.real.parent / item.path.value).resolve()
        if target in chain:
            cycle = " -> ".join(p.name for p in chain[chain.index(target):] + [target])
            program.diagnostics.append(diagnostic(
                "SL112", f"import cycle: {cycle}", item.path.span,
                help="move the shared declarations into a library that imports nothing"))
            continue
        if any(f.real == target for f in program.files):
            continue
        display = os.path.normpath(os.path.join(os.path.dirname(importer.display), item.path.value))
        try:
            data = target.read_bytes()
        except OSError as error:
            program.diagnostics.append(diagnostic(
                "SL111", f"cannot import `{item.path.value}`: {_reason(error)}", item.path.span,
                help="import paths are relative to the importing file"))
            continue
        module, diagnostics, source = parse_bytes(data, display)
        name = os.path.relpath(target, main_dir).replace(os.sep, "/")
        loaded = LoadedFile(display, name, target, source, module)
        program.files.append(loaded)
        program.diagnostics.extend(diagnostics)
        if module is not None:
            _refuse_policy_library(program, loaded, item)
        _load_imports(program, loaded, chain + [target])


def _refuse_policy_library(program: Program, loaded: LoadedFile, item: ast.Import) -> None:
    assert loaded.module is not None
    policy_items = [i for i in loaded.module.items
                    if isinstance(i, (ast.PolicyDecl, ast.ActionBlock, ast.Otherwise))]
    if policy_items:
        program.diagnostics.append(diagnostic(
            "SL053", f"`{item.path.value}` is a policy, not a library", item.path.span,
            help="only files of `input` and `let` declarations can be imported",
            related=[Related(policy_items[0].span, "policy content here")]))

