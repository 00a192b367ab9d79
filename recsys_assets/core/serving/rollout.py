"""How a published version starts to serve, and how an experiment ends.

Every published version has its own manifest (``serving/versions/<v>/manifest.json``, file
paths relative to its folder). The manifest the API follows (``serving/manifest.json``, paths
relative to ``serving/``) names the control version and, during an experiment, the
``experiment`` block (``experiment.py``). ``release`` writes it for a newly published version
by the rollout setting:

* ``replace``: the new version serves everyone (ending any experiment);
* ``ab``: the current control keeps serving, the new version takes ``treatment_share`` of the
  users (a treatment already running is replaced, its salt kept so users keep their arm);
* ``interleave``: every user gets both, merged by team-draft interleaving;
* ``shadow``: the new version is scored beside every request and logged, never shown.

With nothing serving yet, any rollout serves the new version outright. ``end_experiment``
stops the treatment (the control serves everyone) or promotes it (it becomes the control).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from recsys_assets.core.experiments.assignment import CONTROL, TREATMENT, Arm, Experiment, new_salt
from recsys_assets.core.io.artifacts import SERVING_MANIFEST, SERVING_VERSION_MANIFEST, Artifacts
from recsys_assets.core.io.codecs import save
from recsys_assets.core.io.storage import exists
from recsys_assets.core.serving.bundle import VERSIONS_FOLDER, read_manifest
from recsys_assets.settings.serving import Rollout

ROLLOUTS: tuple[Rollout, ...] = get_args(Rollout)


def relocated(manifest: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The manifest with every file path under ``prefix`` (relative paths only)."""
    files = {
        name: {**entry, "path": f"{prefix}/{entry['path']}"} for name, entry in manifest["files"].items()
    }
    return {**manifest, "files": files}


def followed(version_manifest: dict[str, Any]) -> dict[str, Any]:
    """A version's own manifest as the followed manifest names it (no experiment)."""
    top = relocated(version_manifest, f"{VERSIONS_FOLDER}/{version_manifest['version']}")
    top.pop("experiment", None)
    return top


def read_version_manifest(artifacts: Artifacts, version: str) -> dict[str, Any]:
    return read_manifest(artifacts.uri(SERVING_VERSION_MANIFEST, version=version))


def current(artifacts: Artifacts) -> dict[str, Any] | None:
    """The followed manifest, or None when nothing was published yet."""
    uri = artifacts.uri(SERVING_MANIFEST)
    return read_manifest(uri) if exists(uri) else None


def running_experiment(artifacts: Artifacts) -> str | None:
    """The name of the experiment the followed manifest runs, if any."""
    now = current(artifacts)
    return str(now["experiment"]["name"]) if now and "experiment" in now else None


def release(
    artifacts: Artifacts, version_manifest: dict[str, Any], rollout: Rollout, share: float
) -> dict[str, Any]:
    """Write the followed manifest for a newly published version (its own manifest) by
    ``rollout``; returns it."""
    if rollout not in ROLLOUTS:
        raise ValueError(f"rollout {rollout!r}: expected one of {list(ROLLOUTS)}")
    version = str(version_manifest["version"])
    now = None if rollout == "replace" else current(artifacts)
    if now is None or str(now["version"]) == version:
        top = followed(version_manifest)
    else:
        top = {**now, "experiment": _experiment(now, version, rollout, share).to_dict()}
    save(artifacts.uri(SERVING_MANIFEST), top)
    return top


def _experiment(now: dict[str, Any], version: str, rollout: Rollout, share: float) -> Experiment:
    control = str(now["version"])
    running = (
        Experiment.from_dict(now["experiment"], "serving/manifest.json") if "experiment" in now else None
    )
    salt = running.salt if running else new_salt()
    name = f"{control}-vs-{version}"
    if rollout == "shadow":
        arms: tuple[Arm, ...] = (Arm(CONTROL, control, 1.0),)
        if running and running.mode == "ab":  # a running A/B test keeps its treatment
            arms = running.arms
        return Experiment(name, salt, running.mode if running else "ab", arms, shadow=version)
    if not 0 < share < 1:
        raise ValueError(f"treatment_share {share}: expected a share between 0 and 1")
    shares = (0.5, 0.5) if rollout == "interleave" else (1 - share, share)
    arms = (Arm(CONTROL, control, shares[0]), Arm(TREATMENT, version, shares[1]))
    shadow = running.shadow if running and running.shadow != version else None
    return Experiment(name, salt, "interleave" if rollout == "interleave" else "ab", arms, shadow)


def end_experiment(
    artifacts: Artifacts, action: Literal["stop", "promote"], arm: str = TREATMENT
) -> dict[str, Any]:
    """End the running experiment: ``stop`` leaves the control serving everyone, ``promote``
    makes ``arm``'s version the control. Returns the followed manifest written."""
    now = current(artifacts)
    if now is None or "experiment" not in now:
        raise ValueError(f"{artifacts.uri(SERVING_MANIFEST)}: no experiment is running")
    experiment = Experiment.from_dict(now["experiment"], artifacts.uri(SERVING_MANIFEST))
    if action == "stop":
        top = {key: value for key, value in now.items() if key != "experiment"}
    else:
        chosen = next((a for a in experiment.arms if a.name == arm), None)
        if chosen is None:
            raise ValueError(
                f"experiment {experiment.name}: no arm {arm!r} (arms: {[a.name for a in experiment.arms]})"
            )
        top = followed(read_version_manifest(artifacts, chosen.version))
    save(artifacts.uri(SERVING_MANIFEST), top)
    return top
