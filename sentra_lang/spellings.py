"""Action types that reach every pair of blocks two versions of a policy can dispatch to.

Under one `action_type normalize`, a raw action type reaches the block naming its normalised
form, so the names themselves (and one fresh name) reach every block a type can reach. When the
two versions normalise differently, one raw type may reach blocks no name reaches together:
`"ß"` is `"SS"` upper-cased but stays `"ß"` lower-cased. `crossing_spellings` finds, for every
(old block, new block) pair some raw type reaches, one such type: a search over raw texts built
character by character so that one version's normal form spells a name while the other's is
followed through a trie of its names (where a character's case mapping is several characters,
`"ß"` to `"SS"`, it is followed whole). Every spelling found is checked with the runtime's own
normalisation, so each pair reported is real.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

from sentra_runtime.inputs import normalize

Dispatch = Callable[[str], int | None]
DEAD = -1
"""The trie node of a text that is no prefix of any name."""
_PATHS_PER_STATE = 3


@lru_cache(maxsize=8)
def _preimages(case_steps: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Per image, the characters whose case mapping (``case_steps``) gives it and differ from it."""
    found: dict[str, list[str]] = {}
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        image = normalize(char, case_steps)
        if image != char:
            found.setdefault(image, []).append(char)
    return {image: tuple(chars) for image, chars in found.items()}


class _Side:
    """One version's normalisation, split into its case steps and whether it trims."""

    def __init__(self, steps: Sequence[str]) -> None:
        self.case = tuple(step for step in steps if step != "trim")
        self.trims = "trim" in steps

    def image(self, char: str) -> str:
        return normalize(char, self.case)

    def chars_for(self, text: str) -> Iterator[str]:
        """Characters whose image starts `text` (the image of each is a prefix of it)."""
        if text and self.image(text[0]) == text[0]:
            yield text[0]
        table = _preimages(self.case) if self.case else {}
        for size in range(1, min(len(text), 4) + 1):
            yield from table.get(text[:size], ())
        if text[:1] == "ς" and self.case[-1:] == ("lower",):
            yield "Σ"  # lower-cased at the end of a word


class _Trie:
    def __init__(self, names: Sequence[str]) -> None:
        self.children: list[dict[str, int]] = [{}]
        self.ends: dict[int, str] = {}
        for name in names:
            node = 0
            for char in name:
                node = self.children[node].setdefault(char, len(self.children))
                if node == len(self.children):
                    self.children.append({})
            self.ends[node] = name

    def walk(self, node: int, text: str) -> int:
        for char in text:
            if node == DEAD:
                return DEAD
            node = self.children[node].get(char, DEAD)
        return node


def _spell(name: str, guide: _Side, other: _Side, trie: _Trie,
           limit: int) -> Iterator[str]:
    """Raw texts whose normal form under `guide` is `name`, reaching each node of `other`'s
    trie (a name's end, an inner node or no name) they can: a few texts per search state,
    since a character's case mapping may depend on its neighbours (a final `Σ`)."""
    start = (0, 0, 0)  # position in `name`, node of the trie, phase (0 leading, 1 core, 2 trailing)
    paths: dict[tuple[int, int, int], list[str]] = {start: [""]}
    queue = deque([start])
    while queue and len(paths) < limit:
        state = queue.popleft()
        if state[0] == len(name):
            yield from paths[state]
        for path in paths[state]:
            for char, next_state in _steps(name, guide, other, trie, state):
                known = paths.setdefault(next_state, [])
                if not known:
                    queue.append(next_state)
                if len(known) < _PATHS_PER_STATE:
                    known.append(path + char)


def _steps(name: str, guide: _Side, other: _Side, trie: _Trie,
           state: tuple[int, int, int]) -> Iterator[tuple[str, tuple[int, int, int]]]:
    position, node, phase = state
    spaces = [c for c in trie.children[node] if not c.strip()] if node != DEAD else []
    candidates = list(dict.fromkeys([*guide.chars_for(name[position:]), " ", *spaces]))
    for char in candidates:
        blank = not char.strip()
        for phase_after in ((0,) if phase == 0 and blank else (2,) if phase == 2 else
                            (1, 2) if phase == 1 and blank else (1,)):
            if phase_after == 2 and not blank:
                continue
            skipped = phase_after != 1 and blank
            if skipped and guide.trims:
                position_after = position
            else:
                image = guide.image(char)
                if not name.startswith(image, position):
                    continue
                position_after = position + len(image)
            node_after = node if skipped and other.trims else trie.walk(node, other.image(char))
            yield char, (position_after, node_after, phase_after)


def crossing_spellings(old_names: Sequence[str], old_steps: Sequence[str],
                       new_names: Sequence[str], new_steps: Sequence[str],
                       dispatch: tuple[Dispatch, Dispatch], *, limit: int = 20_000) -> list[str]:
    """Raw action types that, between them, reach every (old block, new block) pair that one
    name of either version reaches in its own version (checked with `dispatch`)."""
    if tuple(old_steps) == tuple(new_steps):
        return []
    sides = (_Side(old_steps), _Side(new_steps))
    names = (list(old_names), list(new_names))
    found: dict[tuple[int | None, int | None], str] = {}
    for guide in (0, 1):
        trie = _Trie(names[1 - guide])
        for name in dict.fromkeys(names[guide]):
            for raw in _spell(name, sides[guide], sides[1 - guide], trie, limit):
                found.setdefault((dispatch[0](raw), dispatch[1](raw)), raw)
    return list(found.values())
