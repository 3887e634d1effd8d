"""A DistributedSampler that can start mid-epoch, so a resumed run sees the same data order."""

from collections.abc import Iterator, Sized
from typing import Any

from torch.utils.data import Dataset, DistributedSampler


class EpochIndexedDataset(Dataset):
    """Wraps a dataset with set_epoch so that items are fetched by (epoch, index).

    DataLoader workers hold their own copy of the dataset (for the whole run with persistent
    workers), so set_epoch in the main process would not reach them; the epoch travels with
    every index instead, and augmentations stay a function of (seed, epoch, index).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        """Number of frames of the wrapped dataset."""
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        """Return item index of the wrapped dataset as drawn in epoch `epoch`."""
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


class ResumableSampler(DistributedSampler):
    """DistributedSampler (shuffled by seed + epoch) that skips the samples already trained on.

    It yields (epoch, index) pairs for EpochIndexedDataset.
    """

    def __init__(self, dataset: Sized, num_replicas: int = 1, rank: int = 0,
                 shuffle: bool = True, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Iterate epoch `epoch` from this rank's sample number `start` on."""
        if start < 0:
            raise ValueError(f'sampler start must be >= 0, got {start}')
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Yield this rank's (epoch, index) pairs of the current epoch from the start position."""
        indices = list(super().__iter__())
        return iter([(self.epoch, index) for index in indices[self.start:]])

    def __len__(self) -> int:
        """Number of indices left in the current epoch for this rank."""
        return max(self.num_samples - self.start, 0)
