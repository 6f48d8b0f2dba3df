"""The one way the platform writes a file: private from its first byte, whole or not at all."""

import stat

import pytest

from tess_platform.files import private_temp_file, write_file


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_private_unless_said_and_replaced_whole(tmp_path):
    path = tmp_path / "state" / "outputs.json"
    assert write_file(path, "first")
    assert (path.read_text(), mode(path)) == ("first", 0o600)
    write_file(path, b"second", mode=0o644)
    assert (path.read_text(), mode(path)) == ("second", 0o644)
    assert sorted(p.name for p in path.parent.iterdir()) == ["outputs.json"]  # no temp left


def test_first_wins_keeps_what_another_process_wrote(tmp_path):
    path = tmp_path / "secrets.json"
    assert write_file(path, "theirs", first_wins=True)
    assert not write_file(path, "ours", first_wins=True)
    assert path.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "config.json"
    write_file(path, "old")
    with pytest.raises(TypeError):
        write_file(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_temporary_file_is_private_and_gone_after():
    with private_temp_file("a key", prefix="tess-test-") as path:
        assert (path.read_text(), mode(path)) == ("a key", 0o600)
    assert not path.exists()
