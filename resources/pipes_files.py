"""Pipes messages from a local job through a file, read only as whole lines.

Dagster's ``PipesFileMessageReader`` tails the message file with ``readline()``, which returns
the part of a line written so far when it catches the job mid-write. Our jobs' reports carry
plots and tables (tens of KB in one message, written in several chunks), so under load the reader
parsed half a message, its thread died with a ``JSONDecodeError`` and every later message was
lost: the step then failed for want of the check results that were in them (seen with two steps
at once on 2 cores: "did not yield expected outputs"). This reader keeps a partial line until its
newline arrives.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from threading import Event

from dagster import PipesTempFileMessageReader
from dagster._core.pipes.context import PipesMessageHandler
from dagster._core.pipes.utils import PipesFileMessageReader
from dagster_pipes import PipesParams


def complete_lines(path: str, should_stop: Callable[[], bool], poll_s: float = 0.01) -> Iterator[str]:
    """The lines appended to ``path``, each once whole (newline included), until ``should_stop``
    and nothing is left to read; a last line without its newline is yielded as it is."""
    pending = ""
    with open(path, encoding="utf-8") as stream:
        while True:
            chunk = stream.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
            elif should_stop():
                if pending:
                    yield pending
                return
            else:
                time.sleep(poll_s)


class WholeLineFileReader(PipesFileMessageReader):
    def _reader_thread(self, handler: PipesMessageHandler, is_resource_complete: Event) -> None:
        try:
            for line in complete_lines(self._path, is_resource_complete.is_set):
                handler.handle_message(json.loads(line))
        except:  # the same reporting as Dagster's reader: the error goes into the run's events
            handler.report_pipes_framework_exception(
                f"{self.__class__.__name__} reader thread", sys.exc_info()
            )
            raise


class WholeLineTempFileReader(PipesTempFileMessageReader):
    """``PipesTempFileMessageReader`` reading whole lines (``WholeLineFileReader``)."""

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        with tempfile.TemporaryDirectory() as folder:
            reader = WholeLineFileReader(
                os.path.join(folder, "messages"), include_stdio_in_messages=self._include_stdio_in_messages
            )
            with reader.read_messages(handler) as params:
                yield params
