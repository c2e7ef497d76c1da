"""The exact full-catalogue cross-entropy computed in row chunks: an opt-in extension for big catalogues.

``build_model(config, extensions=(ChunkedLoss,))`` trains with :func:`linear_cross_entropy` instead of
``F.cross_entropy(logits)``: same value and gradients, but the ``(cases, catalogue)`` logits never exist all at once.
On CPU that halves the memory traffic which dominates a step with a large catalogue. The recipe trains with it.
"""

from __future__ import annotations

import torch

from sessrec_course.models.torch_base import SessionModel


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean softmax cross-entropy of ``hidden @ weight.T + bias`` (+ sparse extra scores), chunk by chunk.

    Each chunk's logits give its loss and its gradient (softmax − one-hot) straight away. Matrix products run in
    ``dtype`` (bf16 under autocast), the softmax in fp32. The extra scores (``repeat_ids``, ``repeat_values``, both
    ``(rows, K)``) are added at those ids; their gradient is (softmax − one-hot) read at the same ids.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, repeat_ids, repeat_values, dtype, chunk):
        n = hidden.shape[0]
        w = weight.detach().to(dtype)
        grad_hidden = torch.empty_like(hidden, dtype=torch.float32)
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)
        grad_repeat = None if repeat_values is None else torch.empty_like(repeat_values, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk):
            h = hidden[start : start + chunk].detach().to(dtype)
            t = targets[start : start + chunk]
            logits = torch.addmm(bias.detach().to(dtype), h, w.t()).float()
            if grad_repeat is not None:
                ids = repeat_ids[start : start + chunk]
                logits.scatter_add_(1, ids, repeat_values[start : start + chunk].detach().float())
            target_logit = logits.gather(1, t[:, None]).squeeze(1)
            top = logits.amax(dim=1, keepdim=True)
            probs = logits.sub_(top).exp_()  # in place, one pass: unnormalised softmax
            norm = probs.sum(dim=1, keepdim=True)
            total += (top.squeeze(1) + norm.squeeze(1).log() - target_logit).sum()
            probs.div_(norm)
            probs[torch.arange(len(t), device=t.device), t] -= 1.0
            if grad_repeat is not None:
                grad_repeat[start : start + chunk] = probs.gather(1, ids)
            g = probs.to(dtype)
            grad_hidden[start : start + chunk] = (g @ w).float()
            grad_weight += (g.t() @ h).float()
            grad_bias += probs.sum(0)
        grads = [grad_hidden, grad_weight, grad_bias] + ([] if grad_repeat is None else [grad_repeat])
        ctx.save_for_backward(*grads)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype) + (() if repeat_values is None else (repeat_values.dtype,))
        return total / max(1, n)

    @staticmethod
    def backward(ctx, grad_output):
        grads = ctx.saved_tensors
        scale = grad_output / max(1, grads[0].shape[0])
        out = [(g * scale).to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)]
        grad_repeat = out[3] if len(out) == 4 else None
        return out[0], out[1], out[2], None, None, grad_repeat, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                         chunk: int = 128, repeats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``F.cross_entropy(F.linear(hidden, weight, bias), targets)``, chunked (exact); ``repeats``: ``(ids, values)``
    ``(rows, K)`` added to the logits at those ids first (``scatter_add``: repeated ids add up)."""
    device_type = hidden.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else hidden.dtype
    repeat_ids, repeat_values = (None, None) if repeats is None else repeats
    with torch.autocast(device_type=device_type, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, bias, targets, repeat_ids, repeat_values, dtype, chunk)


class ChunkedLoss(SessionModel):
    """A session model whose catalogue cross-entropy is :func:`linear_cross_entropy` (an extension mixin)."""

    def catalogue_loss(self, hidden: torch.Tensor, targets: torch.Tensor,
                       extra: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        hidden, weight = self.output_weight(hidden)
        return linear_cross_entropy(hidden, weight, self.output_bias, targets, repeats=extra)
