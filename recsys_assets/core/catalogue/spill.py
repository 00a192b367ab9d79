"""Arrow tables appended to named buckets on local disk, then read back one bucket at a time.

This is what keeps staging's memory flat in the size of a dump: parsed rows go to the bucket
of their month (or item shard) as they are parsed, and the work that needs a whole bucket at
once (deduplication, sorting, merging repeated items) holds only that bucket.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO

import pyarrow as pa
from pyarrow import ipc

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class Spill:
    """One Arrow IPC stream file per bucket under ``folder``, all of one schema."""

    def __init__(self, folder: Path, schema: pa.Schema) -> None:
        self.folder = folder
        self.schema = schema
        self._writers: dict[str, tuple[IO[bytes], ipc.RecordBatchStreamWriter]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, bucket: str, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if bucket not in self._writers:
            if not _NAME.match(bucket):
                raise ValueError(f"spill bucket names are plain file names, got {bucket!r}")
            sink = (self.folder / f"{bucket}.arrow").open("wb")
            self._writers[bucket] = (sink, ipc.new_stream(sink, self.schema))
        self._writers[bucket][1].write_table(table)

    def read(self, bucket: str) -> pa.Table:
        """Every row appended to ``bucket``, in order (an empty table if none); the bucket's
        file is deleted, and the bucket takes no more rows."""
        entry = self._writers.pop(bucket, None)
        if entry is None:
            return self.schema.empty_table()
        entry[1].close()
        entry[0].close()
        path = self.folder / f"{bucket}.arrow"
        with pa.OSFile(str(path)) as source:
            table = ipc.open_stream(source).read_all()
        path.unlink()
        return table

    def close(self) -> None:
        for sink, writer in self._writers.values():
            writer.close()
            sink.close()
        self._writers.clear()
