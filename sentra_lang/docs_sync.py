"""Documents generated from the code: the diagnostic code reference and the table schema.

`python -m sentra_lang.docs_sync` rewrites them; a test fails when they are out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sentra_lang.codes import CODES
from sentra_lang.table import json_schema

_INTRO = """# Diagnostics

Every problem `sentra-lang check` reports has a stable code. Codes are never reused; the
message may improve, the code does not change. Output looks like this:

```text
policy.sentra:12:8: error[SL101]: undeclared field `amont`
   |
12 |   when amont > 3 allow as X
   |        ^^^^^
  = help: did you mean `amount`?
```

Severities: **error** (exit code 1; no table is written), **warning** (exit code 0, or 1 with
`--strict`) and **note** (analysis information; shown with `--notes`, never fails a run).
`--format json|sarif|github` renders the same data for tools. Every example below is run by
the test suite, which checks that it produces its code with the carets under the text shown.

What a file holds is shown, never acted on: in the text and GitHub outputs, control characters
(an ANSI escape, a bell, a carriage return), bidirectional overrides (U+202E, "Trojan
Source") and characters drawn as nothing (zero-width characters, the soft hyphen, variation
selectors, tag characters: the list is in [the CLI reference](cli.md)) are written as escapes (`\\x1b`, `\\u202e`) in the message and the
source line, with the carets under the escape, so a hostile policy in a pull request cannot
rewrite a terminal or a CI log. JSON and SARIF carry the text as it is, JSON-escaped.

| range | stage |
|---|---|
| SL0xx | reading and parsing |
| SL05x | file structure |
| SL1xx | names |
| SL2xx | types |
| SL3xx | policy rules |
| SL4xx | exact analysis of the compiled table |
| SL5xx | scenario suites |
"""


def diagnostics_markdown() -> str:
    parts = [_INTRO]
    for code in sorted(CODES.values(), key=lambda c: c.code):
        parts.append(f"\n## {code.code}: {code.title}\n\n*{code.severity}*. {code.explanation}\n")
        if code.example:
            parts.append(f"\n```sentra\n{code.example}```\n")
            if code.underline:
                parts.append(f"\nunderlined: `{code.underline}`\n")
    return "".join(parts)


def schema_json() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


GENERATED = {
    "diagnostics.md": diagnostics_markdown,
    "table.schema.json": schema_json,
}


def main(docs: Path = Path("docs")) -> int:
    for name, render in GENERATED.items():
        (docs / name).write_text(render(), encoding="utf-8")
        print(f"wrote {docs / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs")))
