"""What a run is: every input that shapes an attempt is in run.json's identity (generation settings, the
rendered prompts, the minio3 version), resume and merge refuse a mismatch naming it, and a cached reply is
replayed only for the very request it answered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from minio3_data.errors import BadInputError
from minio3_data.teacher_options import TeacherOptions
from minio3_data.teachers.base import GenerationConfig, ImageRef, Message
from pipelines.synth_coldstart import SynthConfig, synth_coldstart
from pipelines.sampling.attempt import _reply_key
from pipelines.synth_coldstart.merge import merge_runs

SHIPPED_EXEMPLARS = Path(__file__).resolve().parents[1] / "exemplars"


def _cfg(dataset: Path, out: Path, **kw) -> SynthConfig:
    base = {
        "dataset": dataset,
        "out": out,
        "target": None,
        "samples_per_item": 1,
        "limit": 1,
        "progress": False,
        "seed": 3,
    }
    return SynthConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature": 0.5}, "temperature"),
        ({"max_tokens": 512}, "max_tokens"),
        ({"max_images": 4}, "max_images"),
        ({"context_tokens": 16000}, "context_tokens"),
        ({"client": TeacherOptions(thinking_budget=128)}, "thinking_budget"),
        ({"error_rate": 0.5}, "error_rate"),
    ],
)
def test_resume_refuses_a_changed_generation_setting(
    tiny_dataset: Path, tmp_path: Path, change, field
) -> None:
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    with pytest.raises(
        BadInputError, match=rf"this run dir was made with different {field}; resume with the same"
    ):
        synth_coldstart(_cfg(tiny_dataset, run, **change))


def test_options_that_do_not_shape_an_attempt_may_change(tiny_dataset: Path, tmp_path: Path) -> None:
    """stop_at included: server or client, the stored turn is cut at its first action either way."""
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    changed = _cfg(
        tiny_dataset, run, client=TeacherOptions(stop_at="client", rpm=10), concurrency=1, target=5
    )
    assert synth_coldstart(changed).sampling.attempted_now == 0


def test_resume_refuses_another_minio3_version(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    monkeypatch.setattr("pipelines.sampling.config.__version__", "99.0.0")
    with pytest.raises(BadInputError, match="made with different minio3;"):
        synth_coldstart(_cfg(tiny_dataset, run))


def test_resume_refuses_edited_exemplars_at_the_same_path(tiny_dataset: Path, tmp_path: Path) -> None:
    exemplars = tmp_path / "exemplars"
    exemplars.mkdir()
    for f in [*SHIPPED_EXEMPLARS.glob("*.json"), *SHIPPED_EXEMPLARS.glob("*.jpg")]:
        shutil.copy(f, exemplars / f.name)
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run, exemplars=exemplars))
    assert len(json.loads((run / "run.json").read_text())["identity"]["prompts"]) == 16
    path = exemplars / "dfs-1.json"
    exemplar = json.loads(path.read_text())
    exemplar["turns"][0]["thought"] += " Slowly."
    path.write_text(json.dumps(exemplar))
    with pytest.raises(BadInputError, match="made with different exemplars, prompts;"):  # the set is its content
        synth_coldstart(_cfg(tiny_dataset, run, exemplars=exemplars))


def test_a_run_dir_of_an_older_minio3_is_refused_naming_what_it_lacks(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    record = json.loads((run / "run.json").read_text())
    for name in ("minio3", "prompts", "temperature"):
        del record["identity"][name]
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(BadInputError, match="made with different minio3, prompts, temperature;"):
        synth_coldstart(_cfg(tiny_dataset, run))


def test_a_run_made_before_an_identity_field_existed_resumes(tiny_dataset: Path, tmp_path: Path) -> None:
    """model_family, context_reserve and ablate joined the identity later: a run.json without them was made
    with what they mean by default, so it resumes; with another value it is refused, naming the field."""
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    record = json.loads((run / "run.json").read_text())
    for name in ("model_family", "context_reserve", "ablate"):
        del record["identity"][name]
    (run / "run.json").write_text(json.dumps(record))
    assert synth_coldstart(_cfg(tiny_dataset, run)).sampling.attempted_now == 0
    shard = tmp_path / "shard"  # a merge compares the two the same way
    synth_coldstart(_cfg(tiny_dataset, shard))
    (shard / "run.json").write_text(json.dumps(record))
    assert merge_runs([run, shard], tmp_path / "merged").runs == 2
    with pytest.raises(BadInputError, match="made with different context_reserve;"):
        synth_coldstart(_cfg(tiny_dataset, run, context_reserve=100))


def test_merge_refuses_runs_made_with_other_generation_settings(tiny_dataset: Path, tmp_path: Path) -> None:
    synth_coldstart(_cfg(tiny_dataset, tmp_path / "a"))
    synth_coldstart(_cfg(tiny_dataset, tmp_path / "b", temperature=0.2, max_tokens=300))
    with pytest.raises(BadInputError, match="made with different max_tokens, temperature than"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")


def test_the_reply_key_covers_the_whole_request() -> None:
    """System prompt, exemplars, images, teacher, seed and every generation setting: change any and a cached
    reply no longer answers the request."""
    system, question = (
        Message("system", ["Search by zooming."]),
        Message("user", ["What color?", ImageRef(b"a")]),
    )
    gen = GenerationConfig(stop=["</grounding>"], max_tokens=512, temperature=1.0)

    def key(teacher="openai:m", seed=7, gen=gen, messages=(system, question)) -> str:
        return _reply_key("it#0", 2, teacher, seed, gen, list(messages))

    variants = [
        key(messages=(Message("system", ["Search carefully."]), question)),
        key(messages=(question,)),
        key(messages=(system, Message("user", ["What color?", ImageRef(b"b")]))),
        key(messages=(system, Message("user", ["What colour?", ImageRef(b"a")]))),
        key(teacher="openai:other"),
        key(seed=8),
        key(gen=GenerationConfig(stop=["</grounding>"], max_tokens=1024, temperature=1.0)),
        key(gen=GenerationConfig(stop=["</grounding>"], max_tokens=512, temperature=0.7)),
        key(gen=GenerationConfig(stop=[], max_tokens=512, temperature=1.0)),
    ]
    assert key() == key() and key().startswith("it#0@2:")
    assert len({key(), *variants}) == len(variants) + 1
