"""Every diagnostic code, stable forever, with an example that produces it.

`docs/diagnostics.md` is generated from this table and the test suite runs every example, so
a code, its documentation and its behaviour cannot drift apart. Codes are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

_HEADER = 'policy p version "1" {}\n'
_OTHERWISE = "otherwise allow as OTHER\n"


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    severity: str  # "error" | "warning" | "info"
    explanation: str
    example: str
    underline: str  # the text the carets sit under in the example


def _policy(body: str, *, header: str = _HEADER, otherwise: bool = True) -> str:
    return header + body + (_OTHERWISE if otherwise else "")


_ENTRIES = [
    # ------------------------------------------------------------------ syntax: SL0xx
    Code("SL001", "unexpected token", "error",
         "The parser met a token where the grammar does not allow it. The message says what "
         "was expected instead, in words.",
         _policy('action A {\n  allow risk as X\n}\n'), "as"),
    Code("SL002", "unexpected character", "error",
         "A character that starts no token of the language.",
         _policy('action A {\n  when amount @ 3 allow as X\n}\n'), "@"),
    Code("SL003", "unterminated string", "error",
         "A string literal is not closed on the line it starts on.",
         _policy('action A {\n  allow as X "never closed\n}\n'), '"'),
    Code("SL004", "unexpected end of file", "error",
         "The file ends in the middle of a construct (a bracket left open at the end is "
         "SL010).",
         _HEADER + "otherwise allow risk\n", "otherwise allow risk"),
    Code("SL005", "not a text file", "error",
         "The file is not UTF-8 text (for example a binary file).",
         "", ""),
    Code("SL006", "file too large", "error",
         "Policy files are limited to 8 MiB; larger files are refused before parsing.",
         "", ""),
    Code("SL007", "empty file", "error",
         "The file has no declarations at all.",
         "# nothing here\n", "# nothing here"),
    Code("SL008", "invalid escape", "error",
         "Strings take JSON's escapes: `\\\\`, `\\\"`, `\\/`, `\\b`, `\\f`, `\\n`, `\\r`, "
         "`\\t` and `\\uXXXX` (four hex digits; a pair of them for a character above "
         "U+FFFF). Any other escape, fewer than four hex digits and half of a pair are "
         "refused.",
         _policy('action A {\n  allow as X "tab\\q"\n}\n'), '"tab\\q"'),
    Code("SL009", "invalid interpolation", "error",
         "A reason interpolates fields as `{field}`; a lone `{` or `}` must be doubled.",
         _policy('input { amount: number? }\naction A {\n  allow as X "amount {amount"\n}\n'),
         '"amount {amount"'),
    Code("SL010", "unclosed bracket", "error",
         "A `{`, `(` or `[` is never closed. The error is reported where the closing bracket "
         "was due, with the opening bracket as a related location (\"this block is never "
         "closed\"); the rest of the file is still checked, as if the bracket were closed "
         "there, so one missing `}` gives one error, not a cascade.",
         _HEADER + "action A {\n  allow as X\n\naction B {\n  allow as Y\n}\n", "action"),
    Code("SL011", "unmatched closing bracket", "error",
         "A `}`, `)` or `]` closes nothing: no bracket of its kind is open there.",
         _HEADER + "action A {\n  allow as X\n}\n}\n", "}"),
    Code("SL012", "number too long", "error",
         "A number literal has at most 100 digits (a limit of the language, see "
         "\"Limits\" in the language reference).",
         _policy("input { amount: number }\naction A {\n  when amount > " + "9" * 101
                 + " allow as X\n}\n"), "9" * 101),
    Code("SL013", "nesting too deep", "error",
         "A condition nests more than 100 levels deep (`not`, parentheses, `and`/`or` groups "
         "and, once expanded, the named conditions it uses), or a suite value nests lists "
         "more than 32 levels deep. These limits keep every stage bounded; see \"Limits\" in "
         "the language reference.",
         _policy("input { a: bool }\naction A {\n  when " + "not " * 101 + "a allow as X\n}\n"),
         "not a"),
    Code("SL014", "import refused", "error",
         "An import names a file that may not be imported: not a `.sentra` file, outside the "
         "policy's root folder (the folder of the policy being compiled, or `--root`), or not "
         "a regular file (a device, FIFO or socket). Nothing of the file is read or shown.",
         'import "../elsewhere.sentra"\n' + _policy(""), '"../elsewhere.sentra"'),
    Code("SL015", "imports nest too deep", "error",
         "Imports are followed at most 64 files deep (main file, library, library of the "
         "library, ...).",
         "", ""),
    Code("SL016", "bidirectional control character", "warning",
         "The source holds a bidirectional control character (U+202A to U+202E, U+2066 to "
         "U+2069, U+200E, U+200F or U+061C) as it is, in a string or a comment. Editors and code "
         "review tools reorder the text after it on the line, so the line shows other code than "
         "the code that runs (the \"Trojan Source\" attack). Write it in a string as an escape "
         "(`\\u202e`; `sentra-lang fmt` does), and remove it from a comment. Diagnostics show it "
         "escaped. At most 20 are reported per file.",
         "", ""),
    Code("SL017", "number not in decimal digits", "error",
         "A number is written as other languages write it: with an exponent (`1e5`), without a "
         "digit before or after its point (`.5`, `5.`), with underscores (`1_000`), or in "
         "hexadecimal, octal or binary (`0x1F`). Numbers are written in decimal digits, with "
         "an optional `-` and fraction (`-12`, `0.5`, `100000`); the help line gives the "
         "number's exact value written so when it has at most 100 digits.",
         _policy("input { amount: number }\naction A {\n  when amount > 1e5 review as BIG\n}\n"),
         "1e5"),
    # --------------------------------------------------------------- structure: SL05x
    Code("SL050", "missing policy header", "error",
         "A file with action blocks or an `otherwise` must start with a `policy` header; a "
         "file without one is a library of `input` and `let` declarations for `import`.",
         "action A {\n  allow as X\n}\n", "action A"),
    Code("SL051", "duplicate policy header", "error",
         "A file holds one policy.",
         _HEADER + 'policy q version "1" {}\n' + _OTHERWISE, 'policy q version "1" {}'),
    Code("SL052", "duplicate otherwise", "error",
         "A policy has at most one `otherwise`.",
         _policy("otherwise block as NO\n"), "otherwise allow as OTHER"),
    Code("SL053", "imported file is a policy", "error",
         "Only libraries (files without a `policy` header, actions or `otherwise`) can be "
         "imported.",
         "", ""),
    # ------------------------------------------------------------------- names: SL1xx
    Code("SL101", "undeclared field", "error",
         "Every field a rule reads must be declared in an `input` block, with its type.",
         _policy('input { amount: number? }\naction A {\n  when amont > 3 allow as X\n}\n'),
         "amont"),
    Code("SL102", "unknown name", "error",
         "A name used as a set or a condition is not defined by a `let` (or a boolean field).",
         _policy('input { kind: string }\naction A {\n  when kind in SENSITVE allow as X\n}\n'),
         "SENSITVE"),
    Code("SL103", "duplicate field", "error",
         "A field is declared twice.",
         _policy('input {\n  amount: number?\n  amount: int\n}\n'
                 'action A {\n  when amount > 1 allow as X\n}\n'), "amount: int"),
    Code("SL104", "duplicate let", "error",
         "A name is defined twice with `let`.",
         _policy('let S = {"a"}\nlet S = {"b"}\ninput { k: string }\n'
                 'action A {\n  when k in S allow as X\n}\n'), 'let S = {"b"}'),
    Code("SL105", "duplicate rule id", "error",
         "Rule ids identify decisions in logs and reports; each must be unique in a policy.",
         _policy('action A {\n  allow as SAME\n}\naction B {\n  allow as SAME\n}\n'), "SAME"),
    Code("SL106", "action in two blocks", "error",
         "An action type (after the policy's action normalisation) is named by more than one "
         "block, so the later block could never be reached.",
         _policy('action A {\n  allow as X\n}\naction B, A {\n  allow as Y\n}\n'), "A"),
    Code("SL107", "unused field", "warning",
         "A declared input field is read by no rule, condition or reason.",
         _policy('input { amount: number? }\naction A {\n  allow as X\n}\n'), "amount"),
    Code("SL108", "unused let", "warning",
         "A `let` is used by no rule.",
         _policy('let S = {"a"}\naction A {\n  allow as X\n}\n'), "S"),
    Code("SL109", "rule without id", "warning",
         "A rule has no `as NAME`; it gets a generated id (`ACTION_RULE_N`) that changes when "
         "rules move. Give every rule a stable id.",
         _policy('action A {\n  allow "fine"\n}\n'), 'allow "fine"'),
    Code("SL110", "unknown setting", "error",
         "The policy header accepts `risk_threshold`, `strikes`, `description`, "
         "`action_type normalize ...`, `undeclared_fields` and `risk_decay`; a `group` "
         "accepts `risk_threshold`, `strikes` and `risk_decay`.",
         'policy p version "1" {\n  risk_treshold 50\n}\n' + _OTHERWISE, "risk_treshold"),
    Code("SL111", "import not found", "error",
         "An imported file does not exist or cannot be read. Paths are relative to the "
         "importing file.",
         'import "missing.sentra"\n' + _policy(""), '"missing.sentra"'),
    Code("SL112", "import cycle", "error",
         "Files import each other in a cycle.",
         "", ""),
    Code("SL113", "unknown type", "error",
         "Field types are `bool`, `int`, `number`, `string`, `enum {...}` and `set<string>`.",
         _policy('input { amount: integer }\naction A {\n  when amount > 1 allow as X\n}\n'),
         "integer"),
    Code("SL114", "unknown normalisation", "error",
         "String normalisations are `lower`, `upper` and `trim`.",
         _policy('input { kind: string normalize lowercase }\n'
                 'action A {\n  when kind == "a" allow as X\n}\n'), "lowercase"),
    Code("SL115", "duplicate clause", "error",
         "An outcome has at most one `risk`, `as`, `threat`, reason and `description`.",
         _policy('action A {\n  allow risk 1 risk 2 as X\n}\n'), "risk 2"),
    Code("SL116", "name conflict", "error",
         "A `let` has the same name as a declared field, so a reference would be ambiguous.",
         _policy('input { flag: bool }\nlet flag = {"a"}\naction A {\n  when flag allow as X\n}\n'),
         'let flag = {"a"}'),
    Code("SL117", "field inside a field", "error",
         "A field is declared inside another declared field, or holds one (`context` and "
         "`context.order_total`). Input gives `context` either as a value or as the object "
         "that holds `order_total`, never both, so one of the two could never be given.",
         _policy('input {\n  context: string\n  context.order_total: number\n}\n'
                 'action A {\n  when context.order_total > 1 allow as X\n}\n'),
         "context.order_total"),
    Code("SL130", "duplicate group", "error",
         "Two `group` blocks have the same name. Give each group one block.",
         _policy('group trusted {\n  agents "ops-7"\n}\ngroup trusted {\n  agents "ops-8"\n}\n'),
         "trusted"),
    Code("SL131", "invalid agent pattern", "error",
         "A group's `agents` are exact agent ids, or prefixes ending in `*` (`\"senior-*\"`; "
         "`\"*\"` holds every agent). A pattern is not empty and has `*` only at its end.",
         _policy('group trusted {\n  agents "ops-*-eu"\n}\n'), '"ops-*-eu"'),
    Code("SL132", "agent pattern never decides", "warning",
         "An agent belongs to the first group, in declaration order, one of whose patterns "
         "matches its id. This pattern only matches agents that an earlier pattern already "
         "takes, so it never puts an agent in its group.",
         _policy('group all {\n  agents "ops-*"\n}\ngroup seniors {\n  agents "ops-senior-*"\n}\n'),
         '"ops-senior-*"'),
    Code("SL133", "unknown group", "error",
         "`agent.group` is compared with a name no `group` declares (with a \"did you mean\" "
         "hint for a near miss). `\"\"` is the group of an agent no group holds.",
         _policy('group trusted {\n  agents "ops-*"\n}\n'
                 'action A {\n  when agent.group == "trustd" allow as X\n}\n'), '"trustd"'),
    # ------------------------------------------------------------------- types: SL2xx
    Code("SL134", "unknown action in a limit", "error",
         "A group's `limit ACTION N per DURATION` limits one action type, which an `action` "
         "block must name (after the policy's `action_type` normalisation). `limit N per "
         "DURATION` limits every action of the group's agents.",
         _policy('action ISSUE_REFUND {\n  allow as X\n}\ngroup trusted {\n  agents "ops-*"\n'
                 '  limit ISSUE_REFUN 5 per 1h\n}\n'), "ISSUE_REFUN"),
    Code("SL201", "type mismatch", "error",
         "The two sides of a comparison have types that can never be equal or ordered.",
         _policy('input { verified: bool }\naction A {\n  when verified == 1 allow as X\n}\n'),
         "verified == 1"),
    Code("SL202", "value out of enum", "error",
         "A value is compared with an enum field that can never hold it.",
         _policy('input { level: enum {"low", "high"} }\n'
                 'action A {\n  when level == "medium" allow as X\n}\n'), '"medium"'),
    Code("SL203", "ordering needs numbers", "error",
         "`<`, `<=`, `>` and `>=` compare numbers only.",
         _policy('input { kind: string }\naction A {\n  when kind < "b" allow as X\n}\n'),
         'kind < "b"'),
    Code("SL204", "not a condition", "error",
         "A bare name used as a condition must be a `bool` field or a named condition; a number "
         "or a computation (`amount + 1`) is not a condition either: compare it.",
         _policy('input { kind: string }\naction A {\n  when kind allow as X\n}\n'), "kind"),
    Code("SL205", "invalid membership", "error",
         "`in` and `not in` test a string or enum field against a set of strings.",
         _policy('input { amount: number }\naction A {\n  when amount in {"1"} allow as X\n}\n'),
         'amount in {"1"}'),
    Code("SL206", "invalid default", "error",
         "A default value does not fit the field's type.",
         _policy('input { amount: number = "ten" }\n'
                 'action A {\n  when amount > 1 allow as X\n}\n'), '"ten"'),
    Code("SL207", "literal never matches", "error",
         "The field is normalised (for example lower-cased), so a literal that normalisation "
         "would change can never be equal to it.",
         _policy('input { kind: string normalize lower }\n'
                 'action A {\n  when kind == "Approval" allow as X\n}\n'), '"Approval"'),
    Code("SL208", "field always exists", "warning",
         "`exists` on a field that is required or has a default is always true.",
         _policy('input { amount: number = 0 }\n'
                 'action A {\n  when exists amount allow as X\n}\n'), "exists amount"),
    Code("SL209", "string test needs a string", "error",
         "`starts_with` and `ends_with` need a string field; `contains` a string or a set.",
         _policy('input { amount: number }\n'
                 'action A {\n  when amount starts_with "1" allow as X\n}\n'),
         'amount starts_with "1"'),
    Code("SL210", "invalid setting value", "error",
         "`risk_threshold` is a positive integer, `strikes` an integer of at least 1, "
         "`description` a string, `action_type` takes `normalize ...`, `undeclared_fields` is "
         "`refuse` or `ignore` (with a \"did you mean\" hint for a near miss), `risk_decay` "
         "takes `AMOUNT per DURATION` with a positive integer amount.",
         'policy p version "1" {\n  strikes 0\n}\n' + _OTHERWISE, "0"),
    Code("SL211", "normalisation needs a string", "error",
         "Only string, enum and set fields can be normalised.",
         _policy('input { amount: number normalize trim }\n'
                 'action A {\n  when amount > 1 allow as X\n}\n'), "normalize trim"),
    Code("SL212", "not a set", "error",
         "A named condition was used where a set of strings is needed, or the reverse.",
         _policy('input { k: string\n  f: bool }\nlet C = f\n'
                 'action A {\n  when k in C allow as X\n}\n'), "C"),
    Code("SL213", "condition cycle", "error",
         "Named conditions refer to each other in a cycle.",
         _policy('let A1 = B1\nlet B1 = A1\naction A {\n  when A1 allow as X\n}\n'), "B1"),
    Code("SL220", "arithmetic needs numbers", "error",
         "Arithmetic (`+ - * /`) and a comparison with arithmetic take numbers: fields of type "
         "`int` or `number` and number literals. A condition where a number belongs, or a "
         "field of another type, is this error (with a \"did you mean\" for a numeric field "
         "of a similar name).",
         _policy('input { amount: number\n  kind: string }\n'
                 'action A {\n  when amount > kind * 2 allow as X\n}\n'), "kind"),
    Code("SL221", "constant arithmetic fails", "error",
         "A computation on constants alone divides by zero or overflows, so it has no value.",
         _policy('input { amount: number }\n'
                 'action A {\n  when amount > 10 / 0 allow as X\n}\n'), "10 / 0"),
    Code("SL222", "reserved field name", "error",
         "A reason interpolates `{action}` (the action type) and `{agent_id}` (the agent's "
         "id), so no field may be declared with either name. A prefixed field "
         "(`context.action`) is fine. `agent` and every field under it are the agent's own "
         "state (`agent.group`, `agent.cumulative_risk`, `agent.blocked_attempts`), which the "
         "runtime gives: no input field may be declared under it.",
         _policy('input { action: string }\n'
                 'action A {\n  when action == "x" allow as X\n}\n'), "action"),
    Code("SL223", "constant comparison", "error",
         "A comparison with no field on either side is always true or always false.",
         _policy('action A {\n  when 2 * 3 > 5 allow as X\n}\n'), "2 * 3 > 5"),
    Code("SL224", "invalid duration", "error",
         "A duration is a whole number and a unit: `s`, `m`, `h` or `d` (`30m`, `1h`, `7d`), "
         "from `1s` to `36500d`. `1.5h` is written `90m`; `hour` is `1h` (with a \"did you "
         "mean\" hint for a near miss).",
         'policy p version "1" {\n  risk_decay 10 per 1hr\n}\n' + _OTHERWISE, "1hr"),
    Code("SL225", "invalid limit", "error",
         "A rate limit `limit N per DURATION` allows N decisions (a whole number from 1 to "
         "10000) in any window of that duration. It goes on an `allow` rule (limits count "
         "allowed decisions; a `block` or `shutdown` rule is never limited), before the rules "
         "of an action block, or in a group; a block or a group has at most one limit per "
         "duration (and action).",
         _policy('action A {\n  limit 0 per 1h\n  allow as X\n}\n'), "0"),
    # ------------------------------------------------------------------ policy: SL3xx
    Code("SL301", "no otherwise", "warning",
         "The policy has no `otherwise`, so an action type that no block names is blocked "
         "(fail closed, rule id `UNKNOWN_ACTION`). Add `otherwise block ...` to say so "
         "explicitly, or `otherwise allow risk N ...`.",
         _HEADER + "action A {\n  allow as X\n}\n", 'policy p version "1" {}'),
    Code("SL302", "risk out of range", "error",
         "A rule's risk is an integer from 0 to the policy's `risk_threshold`.",
         _policy('action A {\n  allow risk 150 as X\n}\n'), "150"),
    Code("SL303", "risk on shutdown", "warning",
         "A `shutdown` rule stops the agent; a risk on it is recorded but never applied.",
         _policy('action A {\n  shutdown risk 10 as X\n}\n'), "10"),
    Code("SL304", "condition too complex", "error",
         "The condition expands to more than 512 rows in disjunctive normal form, or, with "
         "the named conditions it uses expanded, to more than 10,000 tests (a `let` used "
         "twice counts twice). Split the rule or simplify the named conditions.",
         "", ""),
    Code("SL305", "undeclared fields ignored", "info",
         "The policy says `undeclared_fields ignore`: a key of the input that the policy does "
         "not declare is read past, so a misspelt field (`acount_flag` for `account_flag`) "
         "leaves the real field at its default instead of blocking the action. Without the "
         "setting (or with `undeclared_fields refuse`) such input is blocked, rule id "
         "`UNDECLARED_FIELD`. Choose `ignore` for callers that send more than the policy reads.",
         _policy('input { amount: number? }\naction A {\n  allow as X\n}\n',
                 header='policy p version "1" {\n  undeclared_fields ignore\n}\n'), "ignore"),
    Code("SL310", "expiry on a rule that does not review", "error",
         "`expires DURATION` says how long a `review` rule's ticket waits for an operator "
         "before it expires; an `allow`, `block` or `shutdown` rule decides at once, so it has "
         "no expiry. Make the rule `review`, or remove the clause.",
         _policy('action A {\n  block as X "No." expires 2h\n}\n'), "expires 2h"),
    # ---------------------------------------------------------------- analysis: SL4xx
    Code("SL401", "shadowed rule", "warning",
         "Every input that matches this rule matches an earlier rule first, so this rule "
         "never decides. The witness is an input it matches, decided by the earlier rule the "
         "note names. Like every analysis finding (SL401 to SL406) this is exact: it holds for "
         "every input the runtime accepts, and the witness replays (see Exact analysis in the "
         "language reference).",
         _policy('input { amount: number }\naction A {\n  when amount > 10 block as BIG\n'
                 '  when amount > 100 block as HUGE\n  allow as OK\n}\n'),
         "when amount > 100 block as HUGE"),
    Code("SL402", "condition never true", "warning",
         "No input satisfies the rule's condition, so the rule never matches.",
         _policy('input { amount: number }\naction A {\n'
                 '  when amount > 10 and amount < 5 block as NEVER\n  allow as OK\n}\n'),
         "amount > 10 and amount < 5"),
    Code("SL403", "condition always true", "warning",
         "Every input satisfies the condition, so the `when` adds nothing and the rules after "
         "it are unreachable.",
         _policy('input { amount: number }\naction A {\n'
                 '  when amount > 10 or amount <= 10 block as ALWAYS\n}\n'),
         "amount > 10 or amount <= 10"),
    Code("SL404", "overlapping rules", "info",
         "An earlier conditional rule decides some input that a later conditional rule also "
         "matches, and their outcome or risk differ; the earlier wins (first match). Only inputs "
         "the earlier rule really decides count (not inputs an even earlier rule takes), and "
         "the later rule decides some inputs itself (otherwise it is SL401). The witness is "
         "such an input. Each later rule that overlaps an earlier one is named once, with one "
         "earlier rule it overlaps; when more than three later rules are named with the same "
         "earlier rule they share one summary note there. `check --notes --all-witnesses` "
         "gives every overlapping pair its own note and witness. Often intended; worth a look.",
         _policy('input { amount: number\n  vip: bool }\naction A {\n'
                 '  when amount > 10 block as BIG\n  when vip allow risk 5 as VIP\n'
                 '  allow as OK\n}\n'),
         "when vip allow risk 5 as VIP"),
    Code("SL405", "uncovered inputs", "info",
         "Some inputs of this action match none of its rules; they fall to the policy's "
         "`otherwise` (or are blocked when there is none). The witness is such an input.",
         _policy('input { amount: number }\naction A {\n  when amount > 10 block as BIG\n}\n'),
         "action A"),
    Code("SL406", "analysis limit", "warning",
         "The action's inputs cannot be covered exactly within the analysis limits, so it gets "
         "no analysis findings at all (rather than findings that might be wrong). The message "
         "says which limit: a field, or a group of fields compared with each other, would need "
         "more than 200,000 regions, or the rows would cut the cells into more than 400,000 "
         "pieces. Compare fewer fields with each other, or split the action.",
         _policy('input {\n  a: number\n  b: number\n  c: number\n  d: number\n}\n'
                 'action A {\n  when a > b and b > c and c > d and a > 1 and a > 2 and a > 3 '
                 'and a > 4 and a > 5\n    allow as X\n  allow as Y\n}\n'),
         "action A"),
    Code("SL407", "overlaps cut short", "info",
         "With `--all-witnesses`, an action has more than 200,000 pairs of overlapping rules "
         "with different decisions; the first are listed, the rest are not. Every listed pair is "
         "real, and without `--all-witnesses` every overlapping rule gets its note.",
         "", ""),
    Code("SL408", "analysis not exact", "warning",
         "A rule of the action compares computed values that the analysis cannot rewrite "
         "exactly as a threshold on one field (it can for one `int` field with `int` constants "
         "and `+ - *`, such as `count * 2 + 1 > 9`). Rather than findings that might be wrong, "
         "the action gets this warning and no other analysis finding; `diff` likewise reports "
         "such an action as not compared exactly. The runtime decides it as written.",
         _policy('input {\n  amount: number\n  total: number\n}\n'
                 'action A {\n  when amount > total * 0.5 block as HALF\n  allow as Y\n}\n'),
         "action A"),
    # ------------------------------------------------------------ scenario suites: SL5xx
    # Suite-only codes (examples are `.sentra-test` text, tested in tests/testing/).
    Code("SL501", "suite policy does not compile", "error",
         "The policy a suite names with `for` is missing or has errors; the suite cannot run. "
         "The policy's own diagnostics are reported with it. A path that is not a `.sentra` "
         "file (its symbolic links followed) or not a regular file (a FIFO, a device) is "
         "refused before it is opened, so a suite can never make `sentra-lang test` show the "
         "lines of another file or wait on a pipe.",
         "", ""),
    Code("SL502", "undeclared field in suite", "error",
         "A suite sets or tests a field the policy's `input` block does not declare. The "
         "runtime would block the step's action (`UNDECLARED_FIELD`), or read past the field "
         "when the policy says `undeclared_fields ignore`, so the step would not test what it "
         "says. A step that sends the field on purpose expects `rule UNDECLARED_FIELD`, and is "
         "not reported.",
         "", ""),
    Code("SL503", "unknown rule id in suite", "error",
         "An expectation names a rule id that is neither a rule of the policy nor one of the "
         "runtime's own ids (`RISK_THRESHOLD_EXCEEDED`, `AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS`, "
         "`AGENT_ALREADY_SHUT_DOWN`, `INVALID_INPUT`, `UNDECLARED_FIELD`, `UNKNOWN_ACTION`, "
         "`NO_RULE_MATCHED`).",
         "", ""),
    Code("SL504", "impossible expectation", "error",
         "The expectation can never hold, whatever the state: for example `allowed rule X` "
         "where X is a block rule, a rule of another action, `risk N` different from the "
         "expected rule's risk, or `applied` risk on a decision that is not allowed. A "
         "property's `rule X` where X decides none of the property's actions is one too (the "
         "property would hold, or fail, whatever the policy does).",
         "", ""),
    Code("SL505", "unknown action in suite", "warning",
         "No action block names this action type, and it is close to one that does: a typo "
         "here silently tests the policy's `otherwise` rule. Quote the name to say you mean it.",
         "", ""),
    Code("SL506", "value does not fit the declared type", "warning",
         "The runtime blocks such input as `INVALID_INPUT`; expect that rule to say you mean it.",
         "", ""),
    Code("SL507", "duplicate test name", "error",
         "Scenario, cases and property names are unique in a suite, so that `-k`, reports and "
         "coverage name one test each.",
         "", ""),
    Code("SL508", "case row does not fit its columns", "error",
         "A `cases` row has a different number of values than the `with` line has columns, "
         "or there is no `with` line.",
         "", ""),
    Code("SL509", "invalid expectation", "error",
         "An expectation's value is not one it can take: `status` is `active` or `shut_down`, "
         "numbers are whole and not negative, `examples` is between 1 and 10000, "
         "`reason contains` has some text, and a ticket name (`as NAME`) is given once per "
         "scenario.",
         "", ""),
    Code("SL510", "field set twice", "warning",
         "The same field is given twice in one `{ ... }`; the last value wins.",
         "", ""),
    Code("SL511", "test checks nothing", "error",
         "A scenario none of whose steps checks anything (it is empty, or it only resets "
         "agents, moves the clock and assigns groups), or a `cases` table without rows: it "
         "would pass whatever the policy decides.",
         "", ""),
]

CODES: dict[str, Code] = {entry.code: entry for entry in _ENTRIES}
