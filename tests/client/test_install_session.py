"""An Installer's session keeps one HubClient per hub for the calls inside it, per thread:
another thread using the same Installer (a FeatureStore's) gets its own, and a session's
clients are closed when it ends. (tests/e2e/test_install_path.py counts the connections.)"""

from __future__ import annotations

import threading

from fnhub.config import HubEntry, load_config
from fnhub.install import Installer

HUB = HubEntry(url="http://127.0.0.1:9")


def test_a_session_shares_one_client_per_hub_and_closes_it() -> None:
    installer = Installer(load_config())
    with installer.session():
        with installer._client(HUB) as first, installer._client(HUB) as second:
            assert first is second
        with installer.session(), installer._client(HUB) as nested:  # an inner session
            assert nested is first
        seen: list[object] = []

        def other_thread() -> None:
            with installer._client(HUB) as client:
                seen.append(client)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert seen and seen[0] is not first
    assert first._http.is_closed
    with installer._client(HUB) as alone:  # outside a session: a client for that call only
        assert alone is not first
    assert alone._http.is_closed
