"""Feedback: impressions, clicks and purchases of served items, logged for monitoring and
experiments."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, post
from litestar.exceptions import ClientException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from serving.schemas.feedback import Accepted, FeedbackRequest
from serving.services import AppServices


class FeedbackController(Controller):
    tags = ("feedback",)

    @post("/feedback", status_code=HTTP_202_ACCEPTED)
    async def feedback(self, data: JSONBody[FeedbackRequest], services: AppServices) -> Accepted:
        """Record an impression, click or purchase of a served item (logged for monitoring); 400 for
        a request id the API did not issue to that user."""
        if not services.request_ids.issued(data.request_id, data.user_id):
            raise ClientException(
                detail=f"request_id {data.request_id!r} was not issued by this API for user {data.user_id!r}"
            )
        published = services.index.published
        experiment = published.experiment if published else None
        arm = published.arm_of(data.user_id) if published else None
        services.request_log.append(
            "feedback_events",
            {"request_id": data.request_id, "ts": datetime.now(UTC), "user_id": data.user_id,
             "item_id": data.item_id, "event": data.event,
             "experiment": experiment.name if experiment else None, "arm": arm},
        )  # fmt: skip
        return Accepted("accepted")
