"""Search-pattern tags read off a trajectory's actions (not its prose), for curation and stats.

  - direct: answered without zooming;
  - depth_first: zoomed into an observation (a crop of a crop);
  - backtrack: after a zoom, went back to `original_image` and zoomed a region disjoint from the last one
    (trial-and-error);
  - verification: looked at the same place again: a later zoom overlaps an earlier, non-ancestor zoom,
    or looked at several candidates before answering (goal maintenance);
  - error_recovery: a malformed turn or an invalid zoom, followed later by a valid action.
"""

from __future__ import annotations

from minio3_data.errors import BadInputError
from minio3_data.records import Trajectory

TRAJECTORY_TAGS = ("direct", "depth_first", "backtrack", "verification", "error_recovery")


def check_mix(mix: dict[str, float]) -> None:
    """A one-line error, before anything runs, for a --mix naming a pattern that is not a tag."""
    unknown = sorted(set(mix) - set(TRAJECTORY_TAGS))
    if unknown:
        raise BadInputError(f"--mix: unknown pattern(s) {', '.join(unknown)}; use {', '.join(TRAJECTORY_TAGS)}")


def _overlap(a: list[int], b: list[int]) -> float:
    """Intersection over the smaller box's area: 1.0 when one box contains the other."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def tag_patterns(traj: Trajectory) -> list[str]:
    zooms = [t for t in traj.turns if t.action == "zoom" and t.box_px is not None]
    tags: list[str] = []
    if not zooms:
        tags.append("direct")
    if any(t.source not in (None, "original_image") for t in zooms):
        tags.append("depth_first")
    if any(
        cur.source == "original_image" and _overlap(prev.box_px, cur.box_px) == 0.0
        for prev, cur in zip(zooms, zooms[1:])
    ):
        tags.append("backtrack")
    parent = {t.observation: t.source for t in zooms}

    def ancestors(obs: int | None) -> set[int]:
        seen: set[int] = set()
        src = parent.get(obs)
        while src and src.startswith("observation_"):
            k = int(src.split("_")[1])
            if k in seen:
                break
            seen.add(k)
            src = parent.get(k)
        return seen

    revisits = any(
        _overlap(earlier.box_px, later.box_px) > 0.5 and earlier.observation not in ancestors(later.observation)
        for i, later in enumerate(zooms)
        for earlier in zooms[:i]
    )
    from_original = sum(1 for t in zooms if t.source == "original_image")
    if revisits or from_original >= 3:
        tags.append("verification")
    bad = [i for i, t in enumerate(traj.turns) if t.action == "malformed" or (t.action == "zoom" and t.error)]
    if bad and any(t.action != "malformed" and not t.error for t in traj.turns[bad[0] + 1 :]):
        tags.append("error_recovery")
    return tags
