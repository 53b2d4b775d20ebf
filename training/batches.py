"""The batches a training run sees: datasets from the config, a resumable sample order shared by
the ranks of a torchrun job, and those ranks (Dist).

Reproducibility: every dataset index is a fixed sample; each epoch's order comes from a
DistributedSampler seeded with train.seed; a resumed run skips the samples already seen in its
epoch, so it continues with the batches an uninterrupted run would have used.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from gsrender.engine.environment import env_whole

from .evaluate import EvalSample, paired_samples, synthetic_samples
from .synth.generator import CameraMix, LightingMix, SubjectMix

MixT = TypeVar("MixT", LightingMix, CameraMix, SubjectMix)

# --------------------------------------------------------------------------- distributed


class Dist:
    """Rank facts; a single process is world size 1, rank 0."""

    def __init__(self) -> None:
        # set by torchrun; a bad value is one line (exit 2), not a ValueError traceback
        self.world = env_whole("WORLD_SIZE", 1, 1, 65536)
        self.rank = env_whole("RANK", 0, 0, self.world - 1)
        self.local_rank = env_whole("LOCAL_RANK", 0, 0, 65535)
        self.enabled = self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def init(self, device: torch.device) -> None:
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            t = t.clone()
            dist.all_reduce(t)
            t /= self.world
        return t

    def all_true(self, flag: torch.Tensor) -> bool:
        """True when the flag holds on every rank (ranks must agree before skipping a step)."""
        if self.enabled:
            flag = flag.to(torch.int32)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------- data


class _SkipSampler(Sampler[int]):
    """A DistributedSampler whose first `skip` indices of the current epoch are dropped (resume)."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        for i, idx in enumerate(self.base):
            if i >= self.skip:
                yield idx

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def _worker_init(worker_id: int) -> None:
    """numpy/random in workers follow torch's per-worker seed (itself from the loader generator)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def _mix(cls: type[MixT], data_cfg: dict[str, Any]) -> MixT:
    """One of the generator's knob sets from the data config: every field is a data key of the
    same name (ranges come as TOML lists), so a new knob needs no plumbing here."""
    values = {f.name: data_cfg[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def lighting_mix(data_cfg: dict[str, Any]) -> LightingMix:
    """The generator's LightingMix from the data config."""
    return _mix(LightingMix, data_cfg)


def camera_mix(data_cfg: dict[str, Any]) -> CameraMix:
    """The generator's CameraMix (motion blur and defocus shares) from the data config."""
    return _mix(CameraMix, data_cfg)


def subject_mix(data_cfg: dict[str, Any]) -> SubjectMix:
    """The generator's SubjectMix (semi-transparent and thin subject shares) from the data config."""
    return _mix(SubjectMix, data_cfg)


def build_dataset(cfg: dict[str, Any]) -> torch.utils.data.Dataset:
    d = cfg["data"]
    from . import datasets

    if d["kind"] == "synthetic":
        return datasets.SyntheticKeyingDataset(
            d["length"], crop=d["crop"], gen_size=d["gen_size"], base_seed=d["base_seed"],
            clean_guide=d["clean_guide"],
            lighting=lighting_mix(d),
            camera_mix=camera_mix(d),
            subject_mix=subject_mix(d),
        )  # fmt: skip
    return datasets.PairedSequenceDataset(
        d["folder"], crop=d["crop"], samples_per_epoch=d["samples_per_epoch"], seed=d["seed"]
    )


def build_val_samples(cfg: dict[str, Any]) -> list[EvalSample]:
    d = cfg["data"]
    if d["val_kind"] == "synthetic":
        return synthetic_samples(d["val_count"], d["val_size"], d["val_seed"])
    return paired_samples(d["folder"], d["val_count"], d["val_size"], d["val_seed"])


class BatchStream:
    """Endless batches in a reproducible order that can start at any step."""

    def __init__(self, dataset: Any, cfg: dict[str, Any], rank: Dist, device: torch.device) -> None:
        t = cfg["train"]
        self.seed = t["seed"]
        self.batch = t["batch_size"]
        self.base = DistributedSampler(
            dataset, num_replicas=rank.world, rank=rank.rank, shuffle=True, seed=self.seed, drop_last=True
        )
        self.sampler = _SkipSampler(self.base)
        self.per_epoch = len(self.base) // self.batch
        if self.per_epoch < 1:
            raise ValueError(
                f"the dataset has {len(dataset)} samples, fewer than one batch of {self.batch} per process"
            )
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=self.batch,
            sampler=self.sampler,
            num_workers=t["num_workers"],
            worker_init_fn=_worker_init,
            generator=self.generator,
            drop_last=True,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )

    def from_step(self, step: int) -> Iterator[dict[str, torch.Tensor]]:
        epoch, skip = divmod(step, self.per_epoch)
        while True:
            self.base.set_epoch(epoch)
            self.sampler.skip = skip * self.batch
            self.generator.manual_seed(self.seed * 1_000_003 + epoch)  # worker seeds, per epoch
            yield from self.loader
            epoch, skip = epoch + 1, 0
