"""A file done since it failed has the copy its failure left in the error folder put away."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from edigw.pipeline.replay import replay_file
from edigw.pipeline.signals import utc_now
from tests.fixtures.gateway import files_final, running_gateway, wait_until
from tests.support.cli import edigw
from tests.support.shop import new_customer, shop_workspace, unknown_customer_order


def test_the_running_gateway_clears_the_error_copy_of_a_file_a_replay_made_done(
    tmp_path: Path, sandbox: Any
) -> None:
    shop = shop_workspace(tmp_path / "gw", sandbox)
    tag = uuid.uuid4().hex[:6].upper()
    inbox = shop.inbox("webshop", "orders")
    name = unknown_customer_order(inbox, f"CUS-{tag}", f"WEB-{tag}").name
    with running_gateway(shop) as parts:
        wait_until(files_final(parts, 1), what="the order to fail")
        wait_until((inbox / "error" / f"{name}.error.txt").exists, what="the error report")
        edigw(
            shop,
            "process",
            str(new_customer(tmp_path, f"CUS-{tag}")),
            "--flow",
            "webshop/customers",
        )

        # Requeued, not sent: the running gateway's senders send it, as after a replay whose
        # documents waited for a retry.
        replay_file(
            1,
            flow=parts.inbound["webshop/orders"].context,
            journal=parts.journal,
            archive=parts.archive,
            now=utc_now(),
        )
        wait_until(
            lambda: parts.journal.channel_actions(file_id=1)[0].action == "error-cleared",
            what="the error copy put away",
        )

        assert parts.journal.file(1).state == "done"
        assert (inbox / "done" / name).exists()
        assert list((inbox / "error").iterdir()) == []
        [cleared, _moved_to_error] = parts.journal.channel_actions(file_id=1)[:2]
        assert (cleared.action, cleared.ok) == ("error-cleared", True)
        assert cleared.target == str((inbox / "done" / name).resolve())
