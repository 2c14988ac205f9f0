"""The outline of a region on a heat map (HeatMap.set_outline: the RBM view's receptive
field): in colour, a ring of pixels around it; without colour, box-drawing glyphs on the
cells around it."""

import numpy as np


def cells_within(pixels: np.ndarray) -> np.ndarray:
    """A pixel mask (rows, cols) bool paired into text cells (two pixel rows each): the
    cells whose pixels are all in the mask."""
    if pixels.shape[0] % 2:
        pixels = np.vstack([pixels, np.zeros((1, pixels.shape[1]), dtype=bool)])
    return pixels[0::2] & pixels[1::2]


def _neighbours(mask: np.ndarray):
    """at(dr, dc): whether the neighbour (r + dr, c + dc) of every entry is in mask (False
    beyond the border: the image does not wrap)."""
    padded = np.pad(mask, 1)
    rows, cols = mask.shape

    def at(dr: int, dc: int) -> np.ndarray:
        return padded[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
    return at


def ring_of(inside: np.ndarray) -> np.ndarray:
    """The pixels just outside a region (bool mask): those with a neighbour in it, diagonal
    ones included. The image does not wrap: a region cut by its border (a receptive field
    across the periodic boundary) stays open there, showing that it goes on at the other
    side."""
    at = _neighbours(inside)
    near = np.zeros_like(inside)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near |= at(dr, dc)
    return near & ~inside


def outline_glyphs(inside: np.ndarray) -> dict[tuple[int, int], str]:
    """Box-drawing glyphs on the cells just outside a region (inside: bool per text cell),
    keyed by (row, col): a line beside each edge, a corner at each outer corner; open where
    the region meets the image's border (as ring_of)."""
    at = _neighbours(inside)
    vertical = at(-1, 0) | at(1, 0)  # inside above or below: a horizontal line
    horizontal = at(0, -1) | at(0, 1)
    corners = {"┌": at(1, 1), "┐": at(1, -1), "└": at(-1, 1), "┘": at(-1, -1)}
    marks = {}
    for r, c in zip(*np.nonzero(~inside), strict=True):
        if vertical[r, c] and horizontal[r, c]:
            marks[r, c] = "┼"
        elif vertical[r, c]:
            marks[r, c] = "─"
        elif horizontal[r, c]:
            marks[r, c] = "│"
        else:
            found = [glyph for glyph, mask in corners.items() if mask[r, c]]
            if found:
                marks[r, c] = found[0] if len(found) == 1 else "┼"
    return {(int(r), int(c)): glyph for (r, c), glyph in marks.items()}
