"""Dynamic int8 linear layers: the fast CPU path for CPUs that multiply bf16 only in emulation.

`quantize_linear_layers` returns a copy of a float32 model whose ``nn.Linear`` layers hold int8 weights
(one scale per output channel) and quantise their input on every call: PyTorch's dynamic quantisation,
run by its x86 (fbgemm) int8 kernels. On a 2-core AVX2 CPU the ViT's linear layers are about half of a
frame's time and run about twice as fast in int8; the attention, the CENTER head's convolutions, the
temporal-token maths and all box geometry stay in float32. The accuracy this costs is measured in
docs/default_model.md (section 16).
"""

import functools
import warnings
import weakref

import torch
from torch import nn

# model -> (its parameters' versions and storage when quantised, the quantised copy)
_QUANTISED: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], nn.Module]]" = weakref.WeakKeyDictionary()


@functools.cache
def int8_linear_supported() -> bool:
    """Whether this PyTorch build can run dynamic int8 linear layers on this CPU (x86 or fbgemm engine)."""
    quantization = getattr(torch.ao, "quantization", None)
    if quantization is None or not hasattr(quantization, "quantize_dynamic"):
        return False  # PyTorch has announced the move of this API to torchao
    return torch.backends.quantized.engine in ("x86", "fbgemm")


def quantize_linear_layers(model: nn.Module) -> nn.Module:
    """A copy of a float32 ``model`` with every ``nn.Linear`` dynamically quantised to int8 (per-channel
    weights); the model itself is left unchanged.

    Quantising takes about as long as a few frames, so the copy is kept for the next call with the same
    model (one per tracked video through a pipeline) until one of the model's parameters is changed in place
    (an optimiser step) or replaced.

    Raises:
        ValueError: the model is not float32.
        RuntimeError: this PyTorch build or CPU has no dynamic int8 kernels ([`int8_linear_supported`]).
    """
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        raise ValueError(
            f"Dynamic int8 quantisation needs a float32 model, got {dtype}; load the model in float32 "
            "(the default) or pick another compute dtype."
        )
    if not int8_linear_supported():
        raise RuntimeError(
            "This PyTorch build or CPU has no dynamic int8 linear kernels (torch.ao.quantization with the x86 "
            f"or fbgemm engine; the engine here is {torch.backends.quantized.engine!r}); use dtype=torch.float32."
        )
    # in-place updates bump a tensor's version; .to() and loading new weights replace its storage
    versions = tuple(value for p in model.parameters() for value in (p._version, p.data_ptr()))
    cached = _QUANTISED.get(model)
    if cached is not None and cached[0] == versions:
        return cached[1]
    with warnings.catch_warnings():
        # the quantised-tensor API warns of its future move to torchao on every call
        warnings.simplefilter("ignore")
        quantised = torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, inplace=False
        )
    _QUANTISED[model] = (versions, quantised)
    return quantised


__all__ = ["int8_linear_supported", "quantize_linear_layers"]
