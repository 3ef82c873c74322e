"""Check a model reference before loading it, so a mistake fails at once with one line.

transformers treats anything that is not an existing path as a hub id, and with no network it
retries for about a minute before failing with a long traceback. ``check_source`` tells a
missing path from a hub id, probes the hub once (a few seconds at most), and switches
huggingface_hub to offline mode when the hub is unreachable but the model is cached.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0


class HubUnreachableError(ConnectionError):
    """A hub id was given, the model hub cannot be reached, and the model is not cached."""


def check_source(source: str | os.PathLike[str]) -> None:
    """Make sure ``source`` (a directory, a ``.gguf`` file or a hub id) can be loaded.

    A local path must exist. For a hub id, the hub is probed once per process; if it is
    unreachable and the model is in the local cache, huggingface_hub is switched to offline
    mode so loading reads the cache without retrying the network.

    Raises:
        FileNotFoundError: ``source`` is not an existing path and cannot be a hub id.
        HubUnreachableError: ``source`` is a hub id that is neither reachable nor cached.
    """
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    path = Path(source).expanduser()
    if path.exists():
        return
    # The loader's reading of "org/name/file.gguf": a GGUF file in a hub repository.
    if path.suffix == ".gguf":
        repo_id, filename = str(path.parent), path.name
    else:
        repo_id, filename = str(source), "config.json"
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise FileNotFoundError(
            f"no model at {source}: give an existing directory or .gguf file, or a hub id like org/name"
        ) from None
    if not constants.HF_HUB_OFFLINE and _hub_reachable(constants.ENDPOINT):
        return
    if isinstance(try_to_load_from_cache(repo_id, filename), str):
        _go_offline()
        return
    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{constants.ENDPOINT} cannot be reached"
    raise HubUnreachableError(
        f"{source} is not a local path, and it is a hub id that cannot be downloaded ({why}) and is not "
        "in the local cache; give a local directory or .gguf file, or connect and run again"
    )


@functools.cache
def _hub_reachable(endpoint: str) -> bool:
    """Whether the hub answers within ``PROBE_TIMEOUT_S``; any HTTP answer counts.

    The request runs in a daemon thread because name resolution ignores socket timeouts.
    """
    from huggingface_hub.utils import get_session

    answers: list[bool] = []

    def probe() -> None:
        try:
            get_session().head(endpoint, timeout=PROBE_TIMEOUT_S)
            answers.append(True)
        except Exception as error:  # noqa: BLE001 (any failure to get an answer means "unreachable")
            logger.debug("model hub probe failed: %s", error)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1)
    return bool(answers)


def _go_offline() -> None:
    """Read models from the cache only; huggingface_hub reads this flag at call time."""
    from huggingface_hub import constants

    logger.info("the model hub cannot be reached; loading from the local cache (offline mode)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True


def offline_unless_reachable() -> bool:
    """Switch huggingface_hub to offline mode if the hub cannot be reached (probed once per process),
    so a loader that is not given a model (``datasets.load_dataset``) reads the cache at once
    instead of retrying the network.

    Returns:
        Whether huggingface_hub is now in offline mode.
    """
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE and not _hub_reachable(constants.ENDPOINT):
        _go_offline()
    return constants.HF_HUB_OFFLINE
