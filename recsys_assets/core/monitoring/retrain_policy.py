"""When drift asks for a retrain: the decision behind the drift sensor, free of Dagster.

The sensor reads the ``drift_metrics`` rows computed after its cursor. Any row with status
``breach`` asks for one retrain, unless the last one was requested less than
``min_interval`` ago (the rows are then passed over: a drift that persists breaches again on
the next day's metrics, and a retrain follows once the interval has passed). The run key names
the newest metric day, the serving version and the breached metrics, so the same breach read
twice (a partition rematerialized) never starts a second run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

#: The columns the sensor reads.
COLUMNS = "metric_date, metric_name, value, threshold, status, model_version, computed_at"
NEW_ROWS_SQL = f"SELECT {COLUMNS} FROM {{drift_metrics}} WHERE computed_at > @since ORDER BY computed_at"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cursor:
    #: The newest ``computed_at`` read.
    since: dt.datetime = EPOCH
    #: When the last retrain was requested, and its run key.
    last_retrain: dt.datetime | None = None
    last_run_key: str = ""

    @classmethod
    def parse(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        last = data.get("last_retrain")
        return cls(
            since=dt.datetime.fromisoformat(data["since"]),
            last_retrain=dt.datetime.fromisoformat(last) if last else None,
            last_run_key=data.get("last_run_key", ""),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "since": self.since.isoformat(),
                "last_retrain": self.last_retrain.isoformat() if self.last_retrain else None,
                "last_run_key": self.last_run_key,
            }
        )


@dataclass(frozen=True)
class Decision:
    cursor: Cursor
    #: Set when a retrain is requested.
    run_key: str | None = None
    tags: dict[str, str] | None = None
    #: Why nothing was requested.
    skip_reason: str = ""


def _utc(value: Any) -> dt.datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def decide(rows: pd.DataFrame, cursor: Cursor, now: dt.datetime, min_interval: dt.timedelta) -> Decision:
    """What to do about the drift rows computed after ``cursor.since`` (columns ``COLUMNS``)."""
    if rows.empty:
        return Decision(cursor, skip_reason=f"no drift metrics computed after {cursor.since.isoformat()}")
    since = max(_utc(v) for v in rows["computed_at"])
    read = Cursor(since, cursor.last_retrain, cursor.last_run_key)
    breaches = rows[rows["status"] == "breach"]
    if breaches.empty:
        return Decision(read, skip_reason=f"{len(rows)} new drift metrics, none breached")
    names = sorted(set(breaches["metric_name"]))
    day = str(max(pd.Timestamp(d).date() for d in breaches["metric_date"]))
    versions = sorted(set(breaches["model_version"]))
    digest = hashlib.sha256(",".join(names).encode()).hexdigest()[:10]
    run_key = f"drift-{day}-{'+'.join(versions)}-{digest}"
    if run_key == cursor.last_run_key:
        return Decision(read, skip_reason=f"{run_key} was already requested")
    if cursor.last_retrain is not None and now - cursor.last_retrain < min_interval:
        return Decision(
            read,
            skip_reason=f"{', '.join(names)} breached on {day}, but the last retrain was requested at "
            f"{cursor.last_retrain.isoformat()}, less than {min_interval} ago",
        )
    tags = {
        "recsys/drift_breaches": ",".join(names),
        "recsys/drift_date": day,
        "recsys/drift_model_version": ",".join(versions),
    }
    return Decision(Cursor(since, now, run_key), run_key=run_key, tags=tags)
