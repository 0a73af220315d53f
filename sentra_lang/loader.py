"""Read a policy file and the libraries it imports, within the policy's root folder.

Imports are confined (docs/language.md, "Imports"): the target is a `.sentra` file, inside the
root (the main policy's folder, or the `root` given), a regular file (never a device, FIFO or
anything under /proc outside the root), at most 8 MiB like every source file, and at most
`MAX_IMPORT_DEPTH` files deep. A refused import is a diagnostic that names the path, never the
target's bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sentra_lang import ast
from sentra_lang.diagnostics import Diagnostic, Related, diagnostic
from sentra_lang.files import NotARegularFile, real_path
from sentra_lang.parser import parse, read_source
from sentra_lang.source import Source

MAX_IMPORT_DEPTH = 64
"""The longest chain of imports (main file -> library -> library ...) that is followed."""
SUFFIX = ".sentra"


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

    root: Path
    files: list[LoadedFile] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def main(self) -> LoadedFile:
        return self.files[0]

    def modules(self) -> list[tuple[LoadedFile, ast.Module]]:
        return [(f, f.module) for f in self.files if f.module is not None]


class FileUnreadable(Exception):
    """The main path cannot be read at all: a usage error, not a diagnostic."""


def load_text(text: str, path: str = "<string>", *,
              root: str | os.PathLike[str] | None = None) -> Program:
    """A program from source text; imports resolve relative to the current folder."""
    module, diagnostics = parse(text, path)
    real = real_path(path) if path != "<string>" else Path.cwd() / "<string>"
    loaded = LoadedFile(path, os.path.basename(path), real, Source(path, text), module)
    return _program(loaded, diagnostics, root)


def load_file(path: str | os.PathLike[str], *,
              root: str | os.PathLike[str] | None = None) -> Program:
    """A program from a file. Raises FileUnreadable when the file itself cannot be read.

    `root` is the folder imports must stay in; by default the file's own folder.
    """
    display = os.fspath(path)
    try:
        source, problems = read_source(display)
    except (OSError, ValueError) as error:
        raise FileUnreadable(f"cannot read `{display}`: {_reason(error)}") from error
    module, diagnostics = (None, problems) if problems else parse(source.text, display)
    loaded = LoadedFile(display, os.path.basename(display), real_path(display), source,
                        module)
    return _program(loaded, diagnostics, root)


def _program(main: LoadedFile, diagnostics: list[Diagnostic],
             root: str | os.PathLike[str] | None) -> Program:
    program = Program(real_path(root) if root is not None else main.real.parent, [main],
                      list(diagnostics))
    _load_imports(program, main, [main.real])
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
    for item in importer.module.of_type(ast.Import):
        target = _allowed_target(program, importer, item, chain)
        if target is None or any(f.real == target for f in program.files):
            continue
        display = os.path.normpath(os.path.join(os.path.dirname(importer.display), item.path.value))
        try:
            source, problems = read_source(target, display, regular_only=True)
        except NotARegularFile as error:
            _refuse(program, item, f"`{item.path.value}` is {error.kind}, not a regular file",
                    "only regular `.sentra` files can be imported")
            continue
        except OSError as error:
            program.diagnostics.append(diagnostic(
                "SL111", f"cannot import `{item.path.value}`: {_reason(error)}", item.path.span,
                help="import paths are relative to the importing file"))
            continue
        module, diagnostics = (None, problems) if problems else parse(source.text, display)
        name = os.path.relpath(target, program.main.real.parent).replace(os.sep, "/")
        loaded = LoadedFile(display, name, target, source, module)
        program.files.append(loaded)
        program.diagnostics.extend(diagnostics)
        if module is not None:
            _refuse_policy_library(program, loaded, item)
        _load_imports(program, loaded, chain + [target])


def _allowed_target(program: Program, importer: LoadedFile, item: ast.Import,
                    chain: list[Path]) -> Path | None:
    """The file an import names, or None after reporting why it is not followed."""
    written = item.path.value
    if not written.endswith(SUFFIX):
        _refuse(program, item, f"`{written}` is not a `.sentra` file",
                "only `.sentra` libraries can be imported")
        return None
    target = real_path(importer.real.parent / written)
    if not target.is_relative_to(program.root):
        _refuse(program, item, f"`{written}` is outside the policy's root `{program.root}`",
                "imports stay inside the folder of the policy being compiled; "
                "`--root DIR` widens it")
        return None
    if target.suffix != SUFFIX:
        _refuse(program, item, f"`{written}` links to a file that is not a `.sentra` file",
                "only `.sentra` libraries can be imported")
        return None
    if target in chain:
        cycle = " -> ".join(p.name for p in chain[chain.index(target):] + [target])
        program.diagnostics.append(diagnostic(
            "SL112", f"import cycle: {cycle}", item.path.span,
            help="move the shared declarations into a library that imports nothing"))
        return None
    if len(chain) > MAX_IMPORT_DEPTH:
        program.diagnostics.append(diagnostic(
            "SL015", f"imports nest more than {MAX_IMPORT_DEPTH} files deep", item.path.span,
            help="import the libraries from fewer levels (a library may import several)"))
        return None
    return target


def _refuse(program: Program, item: ast.Import, message: str, help: str) -> None:
    program.diagnostics.append(diagnostic("SL014", f"import refused: {message}", item.path.span,
                                          help=help))


def _refuse_policy_library(program: Program, loaded: LoadedFile, item: ast.Import) -> None:
    assert loaded.module is not None
    policy_items = [i for i in loaded.module.items
                    if isinstance(i, (ast.PolicyDecl, ast.ActionBlock, ast.Otherwise))]
    if policy_items:
        program.diagnostics.append(diagnostic(
            "SL053", f"`{item.path.value}` is a policy, not a library", item.path.span,
            help="only files of `input` and `let` declarations can be imported",
            related=[Related(policy_items[0].span, "policy content here")]))
