"""tlog-tiles paths, entry bundles and the tiles source, on synthetic trees (no store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit import (
    TILE_WIDTH,
    CompactRange,
    TileId,
    TilesSource,
    encode_bundle,
    hash_children,
    hash_leaf,
    parse_bundle,
    parse_tile_path,
    tile_path,
    tile_width,
    verify_consistency,
)
from ledger.audit.errors import SourceError

levels = st.one_of(st.none(), st.integers(0, 63))
indexes = st.integers(0, 2**63 - 1)
widths = st.integers(1, TILE_WIDTH)


@given(levels, indexes, widths)
def test_tile_paths_round_trip(level: int | None, index: int, width: int) -> None:
    path = tile_path(level, index, width)
    assert parse_tile_path(path) == TileId(level, index, width)
    assert TileId(level, index, width).path == path


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 1234067, 256, "tile/0/x001/x234/067"),
        (None, 1234067, 8, "tile/entries/x001/x234/067.p/8"),
        (2, 1000, 255, "tile/2/x001/000.p/255"),
        (63, 999, 1, "tile/63/999.p/1"),
    ],
)
def test_tile_paths_follow_the_spec(level: int | None, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/005",  # leading zero group
        "tile/0/5",
        "tile/0/0005",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/007",
        "tile/64/000",
        "tile/00/000",
        "tile/entries/000.p/",
        "tile/-1/000",
        "/tile/0/000",
        "tile/0/000/",
        "tile/data/000",
    ],
)
def test_non_canonical_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match=r"tlog-tiles path|canonical"):
        parse_tile_path(path)


@given(st.text(max_size=40))
def test_parsing_any_text_is_a_path_or_a_value_error(text: str) -> None:
    try:
        tile = parse_tile_path(text)
    except ValueError:
        return
    assert tile.path == text


@given(st.integers(0, 2**40), st.one_of(st.none(), st.integers(0, 4)))
def test_tile_widths_cover_each_level_exactly(size: int, level: int | None) -> None:
    count = size >> (8 * (level or 0))
    tiles = -(-count // TILE_WIDTH)
    assert tile_width(level, tiles, size) == 0
    if tiles:
        assert tile_width(level, tiles - 1, size) == count - (tiles - 1) * TILE_WIDTH
        assert tile_width(level, 0, size) == min(count, TILE_WIDTH)


entry_lists = st.lists(st.binary(max_size=300), max_size=TILE_WIDTH)


@given(entry_lists)
def test_bundles_round_trip(entries: list[bytes]) -> None:
    data = encode_bundle(entries)
    assert parse_bundle(data) == entries
    assert parse_bundle(data, len(entries)) == entries
    with pytest.raises(SourceError, match="expected"):
        parse_bundle(data, len(entries) + 1)


@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_are_refused_cleanly(data: bytes) -> None:
    try:
        entries = parse_bundle(data, where="tile/entries/000")
    except SourceError as exc:
        message = str(exc)
    else:
        assert encode_bundle(entries) == data
        return
    assert message.startswith("tile/entries/000: ")


@given(entry_lists.filter(bool), st.data())
def test_truncated_bundles_are_refused(entries: list[bytes], data: st.DataObject) -> None:
    encoded = encode_bundle(entries)
    cut = data.draw(st.integers(1, len(encoded)))
    try:
        parsed = parse_bundle(encoded[:-cut], len(entries))
    except SourceError:
        return
    pytest.fail(f"a bundle cut by {cut} bytes parsed as {len(parsed)} entries")


def test_oversized_entries_do_not_fit_a_bundle() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_bundle([b"x" * 65_536])
    with pytest.raises(SourceError, match="more than 256 entries"):
        parse_bundle(encode_bundle([b""] * 256) + b"\x00\x00")


# A synthetic tiles tree, written by this test's own (naive) code -----------------------


def _write_tree(root: Path, entries: list[bytes]) -> bytes:
    """tlog-tiles for ``entries``, computed level by level; returns the root hash."""
    size = len(entries)
    root.mkdir(parents=True, exist_ok=True)
    nodes = [hash_leaf(e) for e in entries]
    level = 0
    for number in range(-(-size // TILE_WIDTH)):
        chunk = entries[number * TILE_WIDTH : (number + 1) * TILE_WIDTH]
        path = root / tile_path(None, number, len(chunk))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_bundle(chunk))
    while nodes:
        for number in range(-(-len(nodes) // TILE_WIDTH)):
            chunk = nodes[number * TILE_WIDTH : (number + 1) * TILE_WIDTH]
            path = root / tile_path(level, number, len(chunk))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(chunk))
        full = [
            nodes[k : k + TILE_WIDTH] for k in range(0, len(nodes) - TILE_WIDTH + 1, TILE_WIDTH)
        ]
        nodes = [_perfect(tile) for tile in full]
        level += 1
    compact = CompactRange()
    for entry in entries:
        compact.append(hash_leaf(entry))
    return compact.root()


def _perfect(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [hash_children(hashes[k], hashes[k + 1]) for k in range(0, len(hashes), 2)]
    return hashes[0]


def _note(size: int, root: bytes) -> bytes:
    import base64

    sig = base64.b64encode(b"\x00" * 68).decode()
    text = f"example.test/log\n{size}\n{base64.b64encode(root).decode()}\n"
    return f"{text}\n\u2014 example.test/log {sig}\n".encode()


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 700), st.data())
def test_tiles_source_reads_entries_roots_and_proofs(
    tmp_path_factory: pytest.TempPathFactory, size: int, data: st.DataObject
) -> None:
    root_dir = tmp_path_factory.mktemp("tree")
    entries = [f'{{"index":{k}}}'.encode() for k in range(size)]
    root = _write_tree(root_dir, entries)
    source = TilesSource(root_dir, checkpoint=_note(size, root))
    start = data.draw(st.integers(0, size))
    stop = data.draw(st.integers(start, size))
    assert list(source.entries(start, stop)) == entries[start:stop]
    assert source.root(size) == root
    old = data.draw(st.integers(0, size))
    old_root = source.root(old)
    compact = CompactRange()
    for entry in entries[:old]:
        compact.append(hash_leaf(entry))
    assert old_root == compact.root()
    verify_consistency(old, size, old_root, root, source.consistency_proof(old, size))


def test_a_wrong_hash_tile_or_bundle_is_named(tmp_path: Path) -> None:
    entries = [f'{{"index":{k}}}'.encode() for k in range(300)]
    root = _write_tree(tmp_path, entries)
    note = _note(300, root)
    node = tmp_path / "tile/1/000.p/1"
    node.write_bytes(bytes(32))
    with pytest.raises(SourceError, match=r"tile/1/000\.p/1: hash 0 does not match"):
        list(TilesSource(tmp_path, checkpoint=note).entries(0, 300))
    leaves = tmp_path / "tile/0/000"
    leaves.write_bytes(
        leaves.read_bytes()[: 32 * 200] + bytes(32) + leaves.read_bytes()[32 * 201 :]
    )
    with pytest.raises(SourceError, match="do not lead to the root"):
        TilesSource(tmp_path, checkpoint=note).consistency_proof(100, 300)
    assert (
        list(TilesSource(tmp_path, checkpoint=note, check_tiles=False).entries(0, 3))
        == (entries[:3])
    )
    (tmp_path / "tile/entries/001.p/44").write_bytes(b"\x00\x05abc")
    with pytest.raises(SourceError, match=r"001\.p/44: entry 0 claims 5 bytes, only 3 remain"):
        list(TilesSource(tmp_path, checkpoint=note).entries(290, 300))
    (tmp_path / "tile/entries/001.p/44").unlink()
    with pytest.raises(SourceError, match="not found, but the checkpoint"):
        list(TilesSource(tmp_path, checkpoint=note).entries(290, 300))
