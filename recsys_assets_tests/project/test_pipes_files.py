"""Pipes messages from local jobs are read as whole lines, however the job's writes split them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dagster._utils import tail_file

from resources.pipes_files import complete_lines

MESSAGE = json.dumps({"method": "report_asset_check", "params": {"metadata": "x" * 50_000}}) + "\n"


def _write_in_two_parts(path: Path, done: threading.Event) -> None:
    with path.open("a", encoding="utf-8") as stream:
        stream.write(MESSAGE[:20_000])
        stream.flush()
        time.sleep(0.3)  # the reader polls meanwhile and finds half a line
        stream.write(MESSAGE[20_000:] + MESSAGE)
    done.set()


def _read(path: Path, reader: Callable[[str, Callable[[], bool]], Iterator[str]]) -> list[str]:
    path.write_text("")
    done = threading.Event()
    writer = threading.Thread(target=_write_in_two_parts, args=(path, done))
    writer.start()
    lines = list(reader(str(path), done.is_set))
    writer.join()
    return lines


def test_a_message_written_in_parts_is_read_whole(tmp_path: Path) -> None:
    lines = _read(tmp_path / "messages", complete_lines)
    assert lines == [MESSAGE, MESSAGE] and json.loads(lines[0])["params"]["metadata"] == "x" * 50_000


def test_dagsters_own_tail_splits_it_which_is_why_we_read_whole_lines(tmp_path: Path) -> None:
    # When Dagster's reader stops splitting lines, resources/pipes_files.py can go.
    lines = _read(tmp_path / "messages", tail_file)
    assert lines[0] == MESSAGE[:20_000] and "".join(lines) == MESSAGE * 2


def test_a_last_line_without_its_newline_is_still_delivered(tmp_path: Path) -> None:
    path = tmp_path / "messages"
    path.write_text('{"a": 1}\n{"b": 2}')
    assert list(complete_lines(str(path), lambda: True)) == ['{"a": 1}\n', '{"b": 2}']
