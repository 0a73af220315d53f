"""First-match evaluation of rows over the cells of a space, without enumerating the cells.

A row is a *box*: per dimension a set of regions (a bit mask). Two representations answer the
same questions:

- `Dense`: when the space has at most `DENSE_LIMIT` cells, a set of cells is one Python
  integer (bit = cell, the first dimension most significant), so intersecting two regions of
  the space is one big-integer operation whatever their shape.
- `Sparse`: for larger spaces, a set of cells is a list of disjoint boxes; the rows still to
  be matched cut boxes in pieces, and an index on one dimension finds the pieces a row can meet.

Both compute the same `Outcome` (which rules match, decide, cover everything, overlap, and a
cell that no rule decides), the decisions of two row lists side by side (`cross`, for `diff`),
and the rules that decide some cell of a filter (`deciders`, for proved properties). A cell is
a tuple of region indices, one per dimension; `Space.witness` turns it into an input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sentra_lang.space import Box, Space

DENSE_LIMIT = 1 << 22
"""Spaces with at most this many cells are one bit mask (512 KiB per set of cells)."""
MAX_PIECES = 400_000
"""A sparse evaluation that cuts the space into more boxes than this gives up (SL406)."""
MAX_PAIRS = 200_000
"""Overlapping pairs of rules listed per action when every pair is asked for (SL407)."""
NARROW = 16

Cell = tuple[int, ...]
Row = tuple[int, Box | None]
"""(label, box): the label (a rule's index) decides the cells of the box not decided earlier;
None: the row can never match."""
Progress = Callable[[int, int], None]


class TooManyPieces(Exception):
    """The evaluation would cut the space into more than MAX_PIECES boxes."""


@dataclass
class Outcome:
    """What first-match evaluation of an action's rows says, per label (rule)."""

    matched: dict[int, Cell] = field(default_factory=dict)
    """A valid cell the label's rows match (absent: the label matches nothing)."""
    decided: dict[int, Cell] = field(default_factory=dict)
    """A cell the label decides (absent: every cell it matches is decided earlier)."""
    always: set[int] = field(default_factory=set)
    """Labels whose rows match every valid cell."""
    pairs: dict[tuple[int, int], Any] = field(default_factory=dict)
    """(a, b) with a < b, eligible: a cell `a` decides that `b` also matches (or two boxes
    whose common cells are such cells, see `cell`)."""
    gap: Cell | None = None
    """A valid cell no row matches."""
    boxes: Callable[[Box], Cell] | None = None
    """How a box becomes a cell (boxes are kept in `pairs`: most pairs are only counted)."""
    pairs_cut: bool = False
    """Every pair was asked for and there were more than MAX_PAIRS: `pairs` is not all."""

    def cell(self, found: Any) -> Cell:
        if isinstance(found, tuple) and found and isinstance(found[0], dict):
            assert self.boxes is not None
            meet = _meet(*found)
            assert meet is not None
            return self.boxes(meet)
        return tuple(found)


Signatures = Sequence[object | None]
"""Per label, what it decides (outcome and risk); two labels overlap when both have one and
they differ. None: the label takes part in no overlap (a rule without `when`)."""


def engine_for(space: Space, rows: Sequence[Row] = ()) -> Dense | Sparse:
    """The representation for this space; `rows` (all rows to be evaluated) tune it."""
    return Dense(space, rows) if space.cells <= DENSE_LIMIT else Sparse(space)


# ------------------------------------------------------------------------- point index

class RowIndex:
    """Which rows hold a given cell: per dimension and region, the rows whose box allows it
    (memoised per dimension and region), intersected over the dimensions."""

    def __init__(self, space: Space, rows: Sequence[Row]) -> None:
        self.count = len(rows)
        self.labels = [label for label, _ in rows]
        dims = len(space.dims)
        everyone = (1 << self.count) - 1
        self.free = [everyone] * dims
        self.narrow: list[dict[int, int]] = [{} for _ in range(dims)]
        self.wide: list[list[tuple[int, int]]] = [[] for _ in range(dims)]
        self._memo: dict[tuple[int, int], int] = {}
        self._swept: dict[int, list[int]] = {}
        self.sizes = space.sizes
        self.never = 0
        for number, (_, box) in enumerate(rows):
            bit = 1 << number
            if box is None:
                self.never |= bit
                continue
            for dim, mask in box.items():
                self.free[dim] &= ~bit
                if mask.bit_count() <= NARROW:
                    for region in _bits(mask):
                        self.narrow[dim][region] = self.narrow[dim].get(region, 0) | bit
                else:
                    self.wide[dim].append((bit, mask))

    def at(self, dim: int, region: int) -> int:
        key = (dim, region)
        rows = self._memo.get(key)
        if rows is None:
            rows = self.free[dim] | self.narrow[dim].get(region, 0) | self._wide_at(dim, region)
            self._memo[key] = rows
        return rows

    def _wide_at(self, dim: int, region: int) -> int:
        """The rows with a wide mask on `dim` that allow `region`. When the table is small
        enough it is built for all regions at once, sweeping over the masks' runs."""
        swept = self._swept.get(dim)
        if swept is None and self.sizes[dim] * self.count <= 1 << 26:
            swept = self._swept[dim] = self._sweep(dim)
        if swept is not None:
            return swept[region]
        rows = 0
        for bit, mask in self.wide[dim]:
            if mask >> region & 1:
                rows |= bit
        return rows

    def _sweep(self, dim: int) -> list[int]:
        toggles: dict[int, int] = {}
        for bit, mask in self.wide[dim]:
            for start, end in _runs(mask):
                toggles[start] = toggles.get(start, 0) ^ bit
                toggles[end] = toggles.get(end, 0) ^ bit
        out = []
        active = 0
        for region in range(self.sizes[dim]):
            active ^= toggles.get(region, 0)
            out.append(active)
        return out

    def first(self, cell: Cell, limit: int | None = None) -> int | None:
        """The index of the first row (below `limit`) whose box holds the cell."""
        rows = ((1 << self.count) - 1) & ~self.never
        if limit is not None:
            rows &= (1 << limit) - 1
        for dim, region in enumerate(cell):
            rows &= self.at(dim, region)
            if not rows:
                return None
        return (rows & -rows).bit_length() - 1 if rows else None


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _runs(mask: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of consecutive set bits."""
    while mask:
        low = mask & -mask
        start = low.bit_length() - 1
        above = (mask | (low - 1)) + 1
        end = (above & -above).bit_length() - 1
        yield start, end
        mask &= ~((1 << end) - 1)


# ----------------------------------------------------------------------------- dense

class Dense:
    """Sets of cells as one integer: cell index = mixed-radix number of its regions.

    The dimension whose rows use the most different masks is the most significant, so that
    its masks (the most numerous) become cells by one shift each.
    """

    def __init__(self, space: Space, rows: Sequence[Row] = ()) -> None:
        self.space = space
        sizes = space.sizes
        self.total = math.prod(sizes)
        distinct: list[set[int]] = [set() for _ in sizes]
        for _, box in rows:
            for dim, mask in (box or {}).items():
                distinct[dim].add(mask)
        order = sorted(range(len(sizes)), key=lambda d: (-len(distinct[d]), -sizes[d], d))
        self.strides = [0] * len(sizes)
        stride = self.total
        for dim in order:
            stride //= sizes[dim] or 1  # a dimension without regions: no input at all
            self.strides[dim] = stride
        self.leading = order[0] if order else -1
        self.full = (1 << self.total) - 1
        self._expanded: dict[tuple[int, int], int] = {}
        """Expansions of the other dimensions' masks (they are few)."""
        self.universe = self.full & ~self.union(space.validity)

    # -- building sets of cells --------------------------------------------------------
    def expand(self, dim: int, mask: int) -> int:
        if dim == self.leading:
            return self._expand(dim, mask)
        key = (dim, mask)
        found = self._expanded.get(key)
        if found is None:
            if len(self._expanded) >= 4096:
                self._expanded.clear()
            found = self._expanded[key] = self._expand(dim, mask)
        return found

    def _expand(self, dim: int, mask: int) -> int:
        size = self.space.dims[dim].size
        if mask == (1 << size) - 1 or not self.total:
            return self.full
        stride = self.strides[dim]
        block = 0
        for start, end in _runs(mask):
            block |= ((1 << ((end - start) * stride)) - 1) << (start * stride)
        period = stride * size
        while period < self.total:  # repeat the block by doubling
            block |= block << period
            period *= 2
        return block & self.full

    def box(self, box: Box | None) -> int:
        if box is None:
            return 0
        cells = self.full
        for dim, mask in box.items():
            cells &= self.expand(dim, mask)
            if not cells:
                break
        return cells

    def union(self, boxes: Sequence[Box]) -> int:
        cells = 0
        for box in boxes:
            cells |= self.box(box)
        return cells

    def cell(self, cells: int) -> Cell:
        """The regions of the lowest cell of a non-empty set."""
        index = (cells & -cells).bit_length() - 1
        return tuple((index // stride) % dim.size
                     for stride, dim in zip(self.strides, self.space.dims))

    # -- questions ----------------------------------------------------------------------
    def first_match(self, rows: Sequence[Row], signatures: Signatures | None = None,
                    progress: Progress | None = None, *, all_pairs: bool = False) -> Outcome:
        """Evaluate the rows; with `signatures`, find overlaps: for each later label one
        earlier label it overlaps (the decider of the lowest such cell), or with `all_pairs`
        every such pair (up to MAX_PAIRS)."""
        outcome = Outcome()
        universe = self.universe
        remaining = universe
        decided: dict[int, _Compact] = {}
        by_signature: dict[object | None, int] = {}
        known: dict[int, list[int]] = {}
        index = RowIndex(self.space, rows) if signatures is not None else None
        current: int | None = None
        covered = 0
        decided_all = 0
        whole = universe == self.full
        for number, (label, box) in enumerate(rows):
            if label != current:
                self._close(outcome, current, covered, universe)
                current, covered = label, 0
            cells = self.box(box)
            if not whole:
                cells &= universe
            if not cells:
                continue
            covered |= cells
            mine = cells & remaining
            signature = signatures[label] if signatures is not None else None
            wanted = all_pairs or label not in known
            if signature is not None and index is not None and wanted and not outcome.pairs_cut:
                earlier = cells & decided_all
                if earlier:
                    earlier &= ~by_signature.get(signature, 0)
                    earlier &= ~by_signature.get(None, 0)
                    for a in known.get(label, []):
                        earlier &= ~decided[a].cells()
                while earlier:
                    cell = self.cell(earlier)
                    row = index.first(cell, number)
                    assert row is not None
                    a = index.labels[row]
                    outcome.pairs.setdefault((a, label), cell)
                    known.setdefault(label, []).append(a)
                    if not all_pairs:
                        break
                    if len(outcome.pairs) >= MAX_PAIRS:
                        outcome.pairs_cut = True
                        break
                    earlier &= ~decided[a].cells()
            if mine:
                decided.setdefault(label, _Compact()).add(mine)
                outcome.decided.setdefault(label, self.cell(mine))
                remaining ^= mine
                decided_all |= mine
                if signatures is not None:
                    by_signature[signature] = by_signature.get(signature, 0) | mine
            if progress is not None and number % 256 == 0:
                progress(number, len(rows))
        self._close(outcome, current, covered, universe)
        if remaining:
            outcome.gap = self.cell(remaining)
        outcome.pairs = {pair: cell for pair, cell in outcome.pairs.items()
                         if pair[1] in outcome.decided}
        return outcome

    def _close(self, outcome: Outcome, label: int | None, covered: int, universe: int) -> None:
        if label is None or not covered:
            return
        outcome.matched.setdefault(label, self.cell(covered))
        if covered == universe:
            outcome.always.add(label)

    def cross(self, first: Sequence[Row],
              second: Sequence[Row]) -> dict[tuple[int | None, int | None], Cell]:
        """Per (label in `first`, label in `second`) (None: no row), a cell both decide."""
        universe = self.universe
        old = self._partition(first, universe)
        new = self._partition(second, universe)
        index = RowIndex(self.space, first)
        out: dict[tuple[int | None, int | None], Cell] = {}
        for label, cells in new.items():
            while cells:
                cell = self.cell(cells)
                row = index.first(cell)
                before = None if row is None else index.labels[row]
                out.setdefault((before, label), cell)
                cells &= ~old[before]
                if len(out) > MAX_PAIRS:
                    raise TooManyPieces(f"more than {MAX_PAIRS:,} regions to compare")
        return out

    def _partition(self, rows: Sequence[Row], universe: int) -> dict[int | None, int]:
        remaining = universe
        parts: dict[int | None, int] = {}
        for label, box in rows:
            cells = self.box(box) & remaining
            if cells:
                parts[label] = parts.get(label, 0) | cells
                remaining &= ~cells
        if remaining:
            parts[None] = remaining
        return parts

    def deciders(self, rows: Sequence[Row], where: Sequence[Box]) -> dict[int | None, Cell]:
        """Per label (None: no row), a cell of the filter it decides."""
        wanted = self.universe & self.union(where)
        return {label: self.cell(cells & wanted)
                for label, cells in self._partition(rows, self.universe).items()
                if cells & wanted}


class _Compact:
    """A set of cells kept from its lowest bit on (decided regions are mostly narrow)."""

    def __init__(self) -> None:
        self.shift = 0
        self.bits = 0

    def add(self, cells: int) -> None:
        if self.bits:
            cells |= self.cells()
        self.shift = (cells & -cells).bit_length() - 1
        self.bits = cells >> self.shift

    def cells(self) -> int:
        return self.bits << self.shift


# ---------------------------------------------------------------------------- sparse

def _meets(a: Box, b: Box) -> bool:
    """Whether two boxes share a cell (no box is built)."""
    if len(b) < len(a):
        a, b = b, a
    for dim, mask in a.items():
        other = b.get(dim)
        if other is not None and not mask & other:
            return False
    return True


def _meet(a: Box, b: Box) -> Box | None:
    out = dict(a)
    for dim, mask in b.items():
        mask &= out.get(dim, mask)
        if not mask:
            return None
        out[dim] = mask
    return out


class Sparse:
    """Sets of cells as lists of disjoint boxes (for spaces too large for one bit mask)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.full = [d.full for d in space.dims]
        self.pieces = 0
        self.universe = self._subtract_all([{}], space.validity)

    def _minus(self, a: Box, b: Box) -> list[Box]:
        """a \\ b as disjoint boxes (a itself when they do not meet)."""
        if _meet(a, b) is None:
            return [a]
        out: list[Box] = []
        rest = dict(a)
        for dim, mask in b.items():
            have = rest.get(dim, self.full[dim])
            outside = have & ~mask
            if outside:
                piece = dict(rest)
                piece[dim] = outside
                out.append(piece)
            rest[dim] = have & mask
        self.pieces += len(out)
        if self.pieces > MAX_PIECES:
            raise TooManyPieces
        return out

    def _subtract_all(self, boxes: list[Box], cuts: Sequence[Box]) -> list[Box]:
        for cut in cuts:
            boxes = [piece for box in boxes for piece in self._minus(box, cut)]
        return boxes

    def cell(self, box: Box) -> Cell:
        return tuple((box[d] & -box[d]).bit_length() - 1 if d in box else 0
                     for d in range(len(self.full)))

    def _key(self, rows: Sequence[Row]) -> int | None:
        """The dimension most rows restrict to a few regions: the index key."""
        counts: dict[int, int] = {}
        for _, box in rows:
            for dim, mask in (box or {}).items():
                if mask.bit_count() <= NARROW:
                    counts[dim] = counts.get(dim, 0) + 1
        return max(counts, key=lambda d: (counts[d], self.full[d].bit_length()), default=None)

    def first_match(self, rows: Sequence[Row], signatures: Signatures | None = None,
                    progress: Progress | None = None, *, all_pairs: bool = False) -> Outcome:
        """As `Dense.first_match`."""
        outcome = Outcome(boxes=self.cell)
        paired: set[int] = set()
        key = self._key(rows)
        universe = _Boxes(key, self.universe)
        remaining = _Boxes(key, self.universe)
        decided = _Boxes(key, [])
        current: int | None = None
        rule_rows: list[Box] = []
        for number, (label, box) in enumerate(rows):
            if label != current:
                self._close(outcome, current, rule_rows)
                current, rule_rows = label, []
            if box is None:
                continue
            hit = next((cut for piece in universe.meeting(box)
                        if (cut := _meet(piece, box)) is not None), None)
            if hit is None:
                continue
            rule_rows.append(box)
            outcome.matched.setdefault(label, self.cell(hit))
            wanted = all_pairs or label not in paired
            if signatures is not None and signatures[label] is not None and wanted \
                    and not outcome.pairs_cut:
                mine = signatures[label]
                pairs = outcome.pairs
                for piece, a in decided.meeting_labelled(box):
                    other = signatures[a]
                    if other is None or other == mine or (a, label) in pairs:
                        continue
                    if a != label and _meets(piece, box):
                        pairs[(a, label)] = (piece, box)
                        paired.add(label)
                        if not all_pairs:
                            break
                        if len(pairs) >= MAX_PAIRS:
                            outcome.pairs_cut = True
                            break
            for entry in remaining.meeting_entries(box):
                piece = remaining.box(entry)
                cut = _meet(piece, box)
                if cut is None:
                    continue
                decided.add(cut, label)
                outcome.decided.setdefault(label, self.cell(cut))
                remaining.remove(entry)
                for rest in self._minus(piece, box):
                    remaining.add(rest)
            if progress is not None and number % 256 == 0:
                progress(number, len(rows))
        self._close(outcome, current, rule_rows)
        first = next(iter(remaining.all()), None)
        if first is not None:
            outcome.gap = self.cell(first)
        outcome.pairs = {pair: cell for pair, cell in outcome.pairs.items()
                         if pair[1] in outcome.decided}
        return outcome

    def _close(self, outcome: Outcome, label: int | None, boxes: list[Box]) -> None:
        if label is None or not boxes:
            return
        if not self._subtract_all(list(self.universe), boxes):
            outcome.always.add(label)

    def _labelled(self, rows: Sequence[Row], start: list[tuple[Box, int | None]],
                  key: int | None) -> _Boxes:
        """Cut the labelled boxes of `start` by the rows: (box, (start label, row label))."""
        remaining = _Boxes(key, [b for b, _ in start], [lab for _, lab in start])
        done = _Boxes(key, [])
        for label, box in rows:
            if box is None:
                continue
            for entry in remaining.meeting_entries(box):
                piece = remaining.box(entry)
                cut = _meet(piece, box)
                if cut is None:
                    continue
                done.add(cut, (remaining.label(entry), label))
                remaining.remove(entry)
                for rest in self._minus(piece, box):
                    remaining.add(rest, remaining.label(entry))
        for entry in remaining.entries():
            done.add(remaining.box(entry), (remaining.label(entry), None))
        return done

    def cross(self, first: Sequence[Row],
              second: Sequence[Row]) -> dict[tuple[int | None, int | None], Cell]:
        key = self._key([*first, *second])
        old = self._labelled(first, [(b, None) for b in self.universe], key)
        start = [(old.box(e), old.pair(e)[1]) for e in old.entries()]
        new = self._labelled(second, start, key)
        out: dict[tuple[int | None, int | None], Cell] = {}
        for entry in new.entries():
            out.setdefault(new.pair(entry), self.cell(new.box(entry)))
        return out

    def deciders(self, rows: Sequence[Row], where: Sequence[Box]) -> dict[int | None, Cell]:
        key = self._key(rows)
        parts = self._labelled(rows, [(b, None) for b in self.universe], key)
        out: dict[int | None, Cell] = {}
        for entry in parts.entries():
            label = parts.pair(entry)[1]
            if label in out:
                continue
            for box in where:
                cut = _meet(parts.box(entry), box)
                if cut is not None:
                    out[label] = self.cell(cut)
                    break
        return out


class _Boxes:
    """A list of labelled boxes with an index on one dimension: boxes restricted to a few
    regions of it are found through those regions, the others are always candidates."""

    def __init__(self, key: int | None, boxes: Sequence[Box],
                 labels: Sequence[object] | None = None) -> None:
        self.key = key
        self._live: dict[int, Box] = {}
        self._labels: list[object] = []
        self._buckets: dict[int, dict[int, None]] = {}
        self._regions: dict[int, list[int]] = {}
        self._wide: dict[int, None] = {}
        for number, box in enumerate(boxes):
            self.add(box, None if labels is None else labels[number])

    def _narrow(self, box: Box) -> int | None:
        if self.key is None or self.key not in box:
            return None
        mask = box[self.key]
        return mask if mask.bit_count() <= NARROW else None

    def add(self, box: Box, label: object = None) -> None:
        entry = len(self._labels)
        self._live[entry] = box
        self._labels.append(label)
        mask = self._narrow(box)
        if mask is None:
            self._wide[entry] = None
            return
        regions = list(_bits(mask))
        self._regions[entry] = regions
        for region in regions:
            self._buckets.setdefault(region, {})[entry] = None

    def remove(self, entry: int) -> None:
        del self._live[entry]
        if entry in self._wide:
            del self._wide[entry]
            return
        for region in self._regions.pop(entry):
            del self._buckets[region][entry]

    def box(self, entry: int) -> Box:
        return self._live[entry]

    def label(self, entry: int) -> object:
        return self._labels[entry]

    def pair(self, entry: int) -> tuple[int | None, int | None]:
        """The label of a box cut by `Sparse._labelled`: (start label, row label)."""
        label = self._labels[entry]
        assert isinstance(label, tuple)
        return label

    def entries(self) -> list[int]:
        return list(self._live)

    def all(self) -> Iterator[Box]:
        return iter(self._live.values())

    def meeting_entries(self, box: Box) -> list[int]:
        """Live entries that may meet `box`, oldest first."""
        mask = self._narrow(box)
        if mask is None:
            return list(self._live)
        found = set(self._wide)
        for region in _bits(mask):
            found.update(self._buckets.get(region, ()))
        return sorted(found)

    def meeting(self, box: Box) -> Iterator[Box]:
        return (self._live[e] for e in self.meeting_entries(box))

    def meeting_labelled(self, box: Box) -> list[tuple[Box, Any]]:
        live, labels = self._live, self._labels
        return [(live[entry], labels[entry]) for entry in self.meeting_entries(box)]
