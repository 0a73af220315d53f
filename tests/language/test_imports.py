"""`import` is confined (issue 11, item 14): `.sentra` files inside the policy's root (or
`--root`), regular files only, 8 MiB at most, and no bytes of a refused file ever shown."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.compiler import compile_file
from sentra_lang.diagnostics import Diagnostic, render_human

HEADER = 'policy p version "1" {}\notherwise allow as O\n'
LIBRARY = 'let SENSITIVE = {"secret"}\n'
SECRET = "TOPSECRET-4711"


def policy(folder: Path, imported: str, name: str = "main.sentra") -> Path:
    path = folder / name
    path.write_text(f"import {imported_literal(imported)}\n{HEADER}", encoding="utf-8")
    return path


def imported_literal(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def errors(path: Path, **kwargs: object) -> list[Diagnostic]:
    return [d for d in compile_file(path, **kwargs).sorted_diagnostics()  # type: ignore[arg-type]
            if d.severity.value == "error"]


def rendered(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(render_human(d) for d in diagnostics)


def test_a_library_inside_the_folder_imports(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "sets.sentra").write_text(LIBRARY, encoding="utf-8")
    assert errors(policy(tmp_path, "lib/sets.sentra")) == []


def test_a_file_outside_the_root_is_refused_and_not_read(tmp_path: Path) -> None:
    (tmp_path / "outside.sentra").write_text(f"# {SECRET}\nthis does not parse {SECRET}\n")
    (tmp_path / "project").mkdir()
    [diag] = errors(policy(tmp_path / "project", "../outside.sentra"))
    assert diag.code == "SL014" and diag.span.text == '"../outside.sentra"'
    assert "outside the policy's root" in diag.message and SECRET not in rendered([diag])


def test_root_widens_the_confinement(tmp_path: Path) -> None:
    (tmp_path / "shared.sentra").write_text(LIBRARY, encoding="utf-8")
    (tmp_path / "project").mkdir()
    main_file = policy(tmp_path / "project", "../shared.sentra")
    assert [d.code for d in errors(main_file)] == ["SL014"]
    assert errors(main_file, root=tmp_path) == []


@pytest.mark.parametrize("command", ["check", "compile", "explain"])
def test_root_option_of_the_commands(tmp_path: Path, command: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shared.sentra").write_text(LIBRARY, encoding="utf-8")
    (tmp_path / "project").mkdir()
    main_file = str(policy(tmp_path / "project", "../shared.sentra"))
    extra = ["A"] if command == "explain" else []
    assert main([command, main_file, *extra]) == 1
    out, err = capsys.readouterr()
    assert "error[SL014]" in out + err
    assert main([command, main_file, *extra, "--root", str(tmp_path)]) == 0


def test_a_missing_root_folder_is_a_usage_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    main_file = policy(tmp_path, "lib.sentra")
    assert main(["check", str(main_file), "--root", str(tmp_path / "nope")]) == 2
    assert "--root" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/passwd", "secrets.env",
                                    "/dev/zero"])
def test_only_sentra_files_are_imported(tmp_path: Path, target: str) -> None:
    [diag] = errors(policy(tmp_path, target), root="/")
    assert diag.code == "SL014" and "is not a `.sentra` file" in diag.message


def test_a_link_to_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(f"TOKEN={SECRET}\n", encoding="utf-8")
    (tmp_path / "lib.sentra").symlink_to(tmp_path / "secrets.env")
    [diag] = errors(policy(tmp_path, "lib.sentra"))
    assert diag.code == "SL014" and SECRET not in rendered([diag])


def test_a_link_out_of_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere.sentra").write_text(LIBRARY, encoding="utf-8")
    (tmp_path / "project" / "lib.sentra").symlink_to(tmp_path / "elsewhere.sentra")
    [diag] = errors(policy(tmp_path / "project", "lib.sentra"))
    assert diag.code == "SL014" and "outside" in diag.message


def test_the_environment_is_never_echoed(tmp_path: Path) -> None:
    # the reported attack: `import "/proc/self/environ"` printed CI secrets in the diagnostic
    (tmp_path / "environ.sentra").symlink_to("/proc/self/environ")
    main_file = policy(tmp_path, "environ.sentra")
    env = {**os.environ, "CI_SECRET": SECRET}
    for root in ([], ["--root", "/"]):
        done = subprocess.run([sys.executable, "-m", "sentra_lang", "check", str(main_file), *root],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 1 and "SL014" in done.stdout
        assert SECRET not in done.stdout + done.stderr


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.sentra")
    main_file = policy(tmp_path, "pipe.sentra")
    done = subprocess.run([sys.executable, "-m", "sentra_lang", "check", str(main_file)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "error[SL014]" in done.stdout
    assert "import refused: `pipe.sentra` is a FIFO, not a regular file" in done.stdout


def test_a_device_is_refused(tmp_path: Path) -> None:
    try:
        os.mknod(tmp_path / "zero.sentra", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs privileges")
    [diag] = errors(policy(tmp_path, "zero.sentra"))
    assert diag.code == "SL014" and "`zero.sentra` is a device, not a regular file" in diag.message


def test_a_folder_named_like_a_library_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "lib.sentra").mkdir()
    [diag] = errors(policy(tmp_path, "lib.sentra"))
    assert diag.code == "SL111" and "folder" in diag.message


def test_an_import_over_8_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    (tmp_path / "big.sentra").write_bytes(b"# " + b"x" * (9 * 1024 * 1024) + b"\n")
    [diag] = errors(policy(tmp_path, "big.sentra"))
    assert diag.code == "SL006" and diag.span.path.endswith("big.sentra")
    assert "9.0 MiB" in diag.message


def test_a_binary_import_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "bin.sentra").write_bytes(f"let A = 1 # {SECRET}\n".encode() + b"\xff\xfe\x00")
    [diag] = errors(policy(tmp_path, "bin.sentra"))
    assert diag.code == "SL005" and (diag.span.line, diag.span.column) == (2, 1)
    assert SECRET not in rendered([diag])


def test_a_deep_import_chain_is_a_diagnostic(tmp_path: Path) -> None:
    # the reported traceback: a 1,200-deep chain of imports
    for index in range(1200):
        follow = f'import "l{index + 1}.sentra"\n' if index < 1199 else ""
        (tmp_path / f"l{index}.sentra").write_text(follow + f'let S{index} = {{"a"}}\n')
    [diag] = errors(policy(tmp_path, "l0.sentra"))
    assert diag.code == "SL015" and diag.span.path.endswith("l63.sentra")


def test_a_diamond_of_imports_loads_each_library_once(tmp_path: Path) -> None:
    (tmp_path / "a.sentra").write_text('import "c.sentra"\nlet A = {"a"}\n')
    (tmp_path / "b.sentra").write_text('import "c.sentra"\nlet B = {"b"}\n')
    (tmp_path / "c.sentra").write_text('let C = {"c"}\n')
    main_file = tmp_path / "main.sentra"
    main_file.write_text(f'import "a.sentra"\nimport "b.sentra"\n{HEADER}')
    result = compile_file(main_file)
    assert result.ok and [f.name for f in result.program.files] == [
        "main.sentra", "a.sentra", "c.sentra", "b.sentra"]
