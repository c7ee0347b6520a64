"""mono.learning.data under DDP: 2 ranks (gloo, CPU) × 2 DataLoader workers see each sample exactly once."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from helpers import make_dataset

MULTISET = np.random.default_rng(1).choice(300, size=301, replace=True).tolist()  # odd: uneven ranks
CASES = {  # name: (loader options, set_epoch arguments)
    "epoch": ({}, (0, None)),
    "next epoch": ({}, (1, None)),
    "multiset": ({}, (0, MULTISET)),
    "drop_last": ({"drop_last": True}, (0, MULTISET)),
    "sequential": ({"shuffle": False}, (0, None)),
}


def _rank(rank: int, world_size: int, root: str, rendezvous: str, result: str) -> None:
    from mono.learning.data import Loader, open_dataset

    # mp.spawn makes "spawn" this process's default start method; DataLoader workers fork, as they do
    # in processes that torchrun starts on Linux.
    torch.multiprocessing.set_start_method("fork", force=True)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        dataset = open_dataset(root)
        seen = {}
        for name, (options, (epoch, indices)) in CASES.items():
            loader = Loader(dataset, 32, **{"shuffle": True, "seed": 3, "num_workers": 2, **options})
            loader.set_epoch(epoch, indices)
            mine = {
                "indices": [i for _, _, batch in loader for i in batch.tolist()],
                "batches": len(loader),
                "samples": loader.num_samples,
                "rank": loader.rank,
            }
            gathered = [None] * world_size
            dist.all_gather_object(gathered, mine)
            seen[name] = gathered
        if rank == 0:
            Path(result).write_text(json.dumps(seen))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(source_image, tmp_path_factory):
    """What each of 2 ranks saw in each case."""
    base = tmp_path_factory.mktemp("ddp")
    root = make_dataset(base / "ds", source_image, fmt="webdataset")
    result = base / "result.json"
    torch.multiprocessing.spawn(_rank, args=(2, str(root), str(base / "rendezvous"), str(result)), nprocs=2)
    return json.loads(result.read_text())


def test_each_sample_exactly_once_over_ranks_and_workers(ranks):
    for name, everything in (("epoch", range(300)), ("next epoch", range(300)), ("multiset", MULTISET)):
        shares = ranks[name]
        assert [s["rank"] for s in shares] == [0, 1]
        together = [i for s in shares for i in s["indices"]]
        assert collections.Counter(together) == collections.Counter(everything), name
        total = len(together)
        assert [len(s["indices"]) for s in shares] == [s["samples"] for s in shares] == [total // 2, total - total // 2]
        assert [s["batches"] for s in shares] == [-(-len(s["indices"]) // 32) for s in shares]
    assert ranks["epoch"][0]["indices"] != ranks["next epoch"][0]["indices"]
    assert ranks["sequential"][0]["indices"] == list(range(150)) and ranks["sequential"][1]["indices"] == list(
        range(150, 300)
    )


def test_drop_last_gives_every_rank_the_same_full_batches(ranks):
    shares = ranks["drop_last"]
    assert [s["batches"] for s in shares] == [301 // 2 // 32] * 2 == [4, 4]
    assert all(len(s["indices"]) == 4 * 32 for s in shares)
    together = collections.Counter(i for s in shares for i in s["indices"])
    assert not together - collections.Counter(MULTISET), "no sample more often than in the epoch's multiset"
