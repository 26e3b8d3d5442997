"""Aspect-rating models for reviews: an LSTM and a CNN, token ids ``(N, T)`` -> rating ``(N,)``.

Both read right-padded token ids from :meth:`mlcourse.datasets.reviews.Vocab.encode`
and predict one aspect's rating in ``[0, 1]`` (a sigmoid output trained with
mean squared error), as the regression models of Lei et al. 2016 and of
Carter et al. 2019, who explained them with Sufficient Input Subsets.

- :class:`LSTMRater`: embedding -> LSTM -> max over time of the hidden states ->
  linear -> sigmoid. It reads the review in order, so the state at a sentiment
  word knows the aspect noun before it ("the aroma is great").
- :class:`CNNRater`: embedding -> 1D convolution over a few words -> ReLU ->
  global max pool -> linear -> sigmoid (Kim 2014). Each filter sees a short window.

Padding never changes a prediction: both pool over real positions only (the
LSTM reads left to right, so padding after a review cannot reach its states).

Masking for SIS: :class:`MeanMaskEmbedding` embeds the ``<mask>`` id as the mean
of all real word embeddings, so replacing a word's id by ``vocab.mask_id``
removes its information (Carter et al. 2019). :func:`mask_tokens` does that, and
:func:`mlcourse.interpret.sis.review_sis` finds the sufficient input subsets of reviews.
"""

from __future__ import annotations

import torch
from torch import nn

from mlcourse.datasets.reviews import Vocab

__all__ = ["MeanMaskEmbedding", "LSTMRater", "CNNRater", "lstm_rater", "cnn_rater", "mask_tokens"]


class MeanMaskEmbedding(nn.Embedding):
    """An embedding whose ``mask_id`` row is always the mean of the real words' rows.

    Rows ``0 .. n_special-1`` are the special tokens; ``<pad>`` (``padding_idx``)
    stays zero. The mean is taken at every forward pass, so it follows training.
    """

    def __init__(self, vocab_size: int, dim: int, pad_id: int, mask_id: int, n_special: int):
        super().__init__(vocab_size, dim, padding_idx=pad_id)
        if vocab_size <= n_special:
            raise ValueError(f"vocabulary of {vocab_size} entries has no real words after {n_special} special tokens")
        self.mask_id, self.n_special = mask_id, n_special

    def mean_embedding(self) -> torch.Tensor:
        """The mean embedding of all real words, ``(dim,)``."""
        return self.weight[self.n_special :].mean(dim=0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = super().forward(ids)
        return torch.where((ids == self.mask_id).unsqueeze(-1), self.mean_embedding(), out)


def _check_ids(ids: torch.Tensor, vocab_size: int, name: str) -> None:
    if ids.ndim != 2 or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name}: expected integer token ids of shape (N, T), got {tuple(ids.shape)} {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"{name}: token id {int(ids.max()) if int(ids.max()) >= vocab_size else int(ids.min())} "
            f"is outside the vocabulary of {vocab_size}"
        )


class LSTMRater(nn.Module):
    """Embedding -> LSTM -> max-pooled hidden states -> linear -> sigmoid: one rating per review.

    Parameters
    ----------
    vocab_size, pad_id, mask_id, n_special : int
        From the :class:`~mlcourse.datasets.reviews.Vocab` (use :func:`lstm_rater`).
    embed_dim, hidden : int
        Word-vector size and LSTM state size.
    """

    def __init__(self, vocab_size: int, pad_id: int, mask_id: int, n_special: int,
                 embed_dim: int = 32, hidden: int = 64):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = MeanMaskEmbedding(vocab_size, embed_dim, pad_id, mask_id, n_special)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(hidden, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_ids(ids, self.embedding.num_embeddings, type(self).__name__)
        states, _ = self.lstm(self.embedding(ids))
        # h = o * tanh(c) lies in (-1, 1): at -1, padded positions never win the max
        states = states.masked_fill((ids == self.pad_id).unsqueeze(-1), -1.0)
        pooled = self.flatten(self.pool(states.transpose(1, 2)))
        return self.sigmoid(self.linear(pooled)).squeeze(-1)


class CNNRater(nn.Module):
    """Embedding -> Conv1d over ``kernel`` words -> ReLU -> global max pool -> linear -> sigmoid (Kim 2014).

    Parameters
    ----------
    vocab_size, pad_id, mask_id, n_special : int
        From the :class:`~mlcourse.datasets.reviews.Vocab` (use :func:`cnn_rater`).
    embed_dim, channels, kernel : int
        Word-vector size, number of filters, filter width in words (odd).
    """

    def __init__(self, vocab_size: int, pad_id: int, mask_id: int, n_special: int,
                 embed_dim: int = 32, channels: int = 64, kernel: int = 5):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel={kernel} must be a positive odd number of words")
        self.pad_id = pad_id
        self.embedding = MeanMaskEmbedding(vocab_size, embed_dim, pad_id, mask_id, n_special)
        self.conv = nn.Conv1d(embed_dim, channels, kernel, padding=kernel // 2)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(channels, 1)
        self.sigmoid = nn.Sigmoid()

    @property
    def last_conv(self) -> nn.Conv1d:
        """The (only) convolution."""
        return self.conv

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_ids(ids, self.embedding.num_embeddings, type(self).__name__)
        maps = self.relu(self.conv(self.embedding(ids).transpose(1, 2)))
        maps = maps * (ids != self.pad_id).unsqueeze(1)  # ReLU outputs are >= 0: zeros never win the max
        return self.sigmoid(self.linear(self.flatten(self.pool(maps)))).squeeze(-1)


def lstm_rater(vocab: Vocab, **kwargs) -> LSTMRater:
    """An :class:`LSTMRater` sized for ``vocab`` (keyword arguments: ``embed_dim``, ``hidden``)."""
    return LSTMRater(len(vocab), vocab.pad_id, vocab.mask_id, vocab.n_special, **kwargs)


def cnn_rater(vocab: Vocab, **kwargs) -> CNNRater:
    """A :class:`CNNRater` sized for ``vocab`` (keyword arguments: ``embed_dim``, ``channels``, ``kernel``)."""
    return CNNRater(len(vocab), vocab.pad_id, vocab.mask_id, vocab.n_special, **kwargs)


def mask_tokens(ids: torch.Tensor, mask: torch.Tensor, mask_id: int = Vocab.mask_id) -> torch.Tensor:
    """Replace the token ids where ``mask`` is True by ``mask_id`` (embedded as the mean word).

    ``mask`` is boolean and broadcasts against ``ids`` ``(N, T)``. Padding is
    never masked: it is not part of the review.
    """
    mask = torch.as_tensor(mask, dtype=torch.bool, device=ids.device)
    try:
        mask = torch.broadcast_to(mask, ids.shape)
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to ids {tuple(ids.shape)}") from None
    return torch.where(mask & (ids != Vocab.pad_id), torch.as_tensor(mask_id, device=ids.device), ids)
