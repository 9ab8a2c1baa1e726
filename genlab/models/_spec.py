"""ArchSpec: one architecture description, realised as an infinite-width kernel and a torch net.

The spec fixes everything but the width. ``to_stax`` builds the neural-tangents triple
``(init_fn, apply_fn, kernel_fn)`` and ``to_torch`` a ``torch.nn.Module`` of a given width with
the same parametrization and initialisation, so that the empirical NTK of the module converges
to ``kernel_fn`` as the width grows (Jacot, Gabriel & Hongler 2018; Novak et al. 2020).

Parametrizations (every layer ``l`` with fan-in ``m``; ``W``, ``b`` the trained parameters):

- ``"ntk"``: ``h = (w_std / sqrt(m)) W a + b_std b`` with ``W, b ~ N(0, 1)`` (Jacot et al. 2018;
  neural-tangents' default). The NTK limit is width independent.
- ``"standard"``: ``h = W a + b`` with ``W ~ N(0, w_std^2 / m)``, ``b ~ N(0, b_std^2)``. Same NNGP
  as ``"ntk"``, but the NTK grows with the layer widths (Sohl-Dickstein et al. 2020), so the
  analytic side needs the width.
- ``"mup"``: the maximal-update parametrization for SGD of Yang & Hu 2021 (Tensor Programs IV,
  abc-parametrization with ``a = (-1/2, 0, ..., 0, 1/2)``, ``b = 1/2``, ``c = 0``): every
  weight is ``w ~ N(0, 1/n)`` (``n`` the width) times a multiplier ``sqrt(n) * w_std / sqrt(d)``
  for the input layer, ``w_std`` for hidden layers and ``w_std / sqrt(n)`` for the readout; every
  bias ``b ~ N(0, 1/fan_out)`` times ``b_std * sqrt(fan_out)``. Hidden pre-activations at init are
  distributed as under ``"ntk"``, while the output shrinks like ``1/sqrt(n)``. A width-independent
  learning rate then moves the features by O(1): the mean-field / muP limit has *no* fixed NTK.
  Its analytic side is therefore the NNGP at initialisation only: the kernel of the
  ``"ntk"``-parametrized net with the same ``w_std, b_std`` (``width * (Cov f - b_std^2) + b_std^2``
  of the muP net at init), and the statement that the NTK evolves during training.

Conv kinds take channels-last inputs, ``(batch, length, channels)`` or ``(batch, height, width,
channels)``, as neural-tangents does; for them the width is the number of channels of every
convolution. A readout layer maps to ``out_dim`` outputs after ``pooling`` ("flatten" or
"global_avg"; neural-tangents' ``Flatten`` / ``GlobalAvgPool``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from genlab._checks import InvalidArgument, choice, integer, is_integer, real

if TYPE_CHECKING:  # heavy imports only for type checkers
    import torch

KINDS = ("fc", "conv1d", "conv2d")
#: Kinds without a neural-tangents realisation, accepted besides KINDS (see the module docstring).
TORCH_ONLY_KINDS = ("diag_linear",)
ACTIVATIONS = ("relu", "erf", "gelu", "identity")
ACTIVATION_ALIASES = {"linear": "identity"}
PARAMETRIZATIONS = ("ntk", "standard", "mup")
PADDINGS = ("SAME", "VALID", "CIRCULAR")
POOLINGS = ("flatten", "global_avg")

#: Width of the finite network that ``to_stax`` builds for ``init_fn``/``apply_fn`` when no
#: width is given (the NTK-parametrized kernel does not depend on it).
DEFAULT_STAX_WIDTH = 512


class SpecError(InvalidArgument):
    """An ArchSpec field (owner "ArchSpec") or realisation argument has an invalid value."""


def check_positive_int(value: Any, key: str, *, owner: str | None = None) -> int:
    """``value`` as an int >= 1, else a SpecError naming ``owner.key``."""
    return integer(value, key, owner=owner, minimum=1, expected="a positive int", error=SpecError)


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """An architecture without its width; see the module docstring for the conventions.

    Attributes:
        kind: "fc", "conv1d" or "conv2d".
        depth: number of hidden layers (fc: >= 0, 0 is a linear model; conv: >= 1 convolutions).
        activation: "relu", "erf", "gelu" (exact, Gaussian CDF) or "identity" (alias "linear").
        parametrization: "ntk", "standard" or "mup".
        w_std: weight standard deviation scale sigma_w > 0 (the same for every layer).
        b_std: bias standard deviation sigma_b >= 0, or None for layers without bias.
        out_dim: number of outputs.
        filter_size, stride, padding, pooling: for conv kinds (square filters and strides).
    """

    kind: str = "fc"
    depth: int = 2
    activation: str = "relu"
    parametrization: str = "ntk"
    w_std: float = 1.0
    b_std: float | None = None
    out_dim: int = 1
    filter_size: int = 3
    stride: int = 1
    padding: str = "SAME"
    pooling: str = "flatten"

    def __post_init__(self) -> None:
        def set_choice(name: str, options: tuple[str, ...], aliases: dict[str, str] | None = None) -> None:
            value = getattr(self, name)
            if isinstance(value, str) and aliases and value in aliases:
                object.__setattr__(self, name, aliases[value])
                return
            choice(value, name, options + tuple(aliases or ()), owner="ArchSpec", error=SpecError)

        if self.kind not in TORCH_ONLY_KINDS:
            set_choice("kind", KINDS)
        set_choice("activation", ACTIVATIONS, ACTIVATION_ALIASES)
        set_choice("parametrization", PARAMETRIZATIONS)
        set_choice("padding", PADDINGS)
        set_choice("pooling", POOLINGS)
        min_depth = 0 if self.kind == "fc" else 1
        if self.kind == "diag_linear" and (self.depth != 2 or self.out_dim != 1):
            raise SpecError(f"ArchSpec kind 'diag_linear' needs depth = 2 and out_dim = 1; got depth={self.depth!r}, out_dim={self.out_dim!r}",
                            owner="ArchSpec")
        depth = integer(self.depth, "depth", owner="ArchSpec", minimum=min_depth,
                        expected=f"an int >= {min_depth} for kind {self.kind!r}", error=SpecError)
        w_std = real(self.w_std, "w_std", owner="ArchSpec", low=0.0, low_open=True, error=SpecError)
        if self.b_std is not None:
            b_std = real(self.b_std, "b_std", owner="ArchSpec", low=0.0, expected="None or a finite float >= 0", error=SpecError)
            object.__setattr__(self, "b_std", b_std)
        for name, value in (
            ("depth", depth),
            ("w_std", w_std),
            ("out_dim", check_positive_int(self.out_dim, "out_dim", owner="ArchSpec")),
            ("filter_size", check_positive_int(self.filter_size, "filter_size", owner="ArchSpec")),
            ("stride", check_positive_int(self.stride, "stride", owner="ArchSpec")),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the spec's fields (the keys a config may set)."""
        return tuple(f.name for f in fields(cls))

    @property
    def spatial_dims(self) -> int:
        """Number of spatial axes of an input: 0 (fc), 1 (conv1d) or 2 (conv2d)."""
        return {"fc": 0, "conv1d": 1, "conv2d": 2, "diag_linear": 0}[self.kind]

    def check_input_shape(self, input_shape: Any, name: str = "input_shape") -> tuple[int, ...]:
        """Validate one input's shape (no batch axis) for this kind and return it as a tuple.

        fc takes ``(d,)``, conv1d ``(length, channels)``, conv2d ``(height, width, channels)``;
        with padding "VALID" every convolution must leave at least one position.
        """
        expected = {"fc": "(d,)", "conv1d": "(length, channels)", "conv2d": "(height, width, channels)", "diag_linear": "(d,)"}[self.kind]
        try:
            shape = tuple(input_shape)
        except TypeError:
            raise SpecError(f"must be a tuple {expected} for kind {self.kind!r}; got {input_shape!r}", key=name) from None
        if len(shape) != self.spatial_dims + 1 or not all(is_integer(s) and s >= 1 for s in shape):
            raise SpecError(f"must be a tuple {expected} of positive ints for kind {self.kind!r}; got {input_shape!r}", key=name)
        spatial = shape[:-1]
        for _ in range(self.depth if self.kind in ("conv1d", "conv2d") else 0):
            spatial = tuple(conv_output_size(s, self.filter_size, self.stride, self.padding) for s in spatial)
            if min(spatial) < 1:
                raise SpecError(
                    f"{name}={shape} is too small for {self.depth} convolutions with filter_size="
                    f"{self.filter_size}, stride={self.stride}, padding={self.padding!r}"
                )
        return shape

    def to_stax(self, width: int | None = None) -> tuple[Any, Any, Any]:
        """The neural-tangents triple ``(init_fn, apply_fn, kernel_fn)`` of this architecture.

        ``width`` is the hidden width (channels for conv kinds). The kernel of the "ntk" and
        "mup" parametrizations does not depend on it (``init_fn``/``apply_fn`` then use
        ``DEFAULT_STAX_WIDTH`` when it is None); "standard" needs it, since its NTK scales
        with the layer widths. For "mup" the triple is that of the "ntk" net with the same
        ``w_std``/``b_std``: its NNGP is the muP net's kernel at init (see the module docstring).
        """
        from genlab.models._stax import build_stax

        if self.kind == "diag_linear":
            raise SpecError("ArchSpec kind 'diag_linear' has no neural-tangents kernel; use kind 'fc' for kernel predictions")
        if width is None:
            if self.parametrization == "standard":
                raise SpecError(
                    "width is required for parametrization 'standard': its NTK scales with the layer widths"
                )
            width = DEFAULT_STAX_WIDTH
        return build_stax(self, check_positive_int(width, "width"))

    def to_torch(
        self,
        width: int,
        *,
        input_shape: tuple[int, ...],
        seed: int,
        alpha: float | None = None,
        dtype: "torch.dtype | None" = None,
    ) -> "torch.nn.Module":
        """A torch network of this architecture at ``width``, initialised from ``seed``.

        ``input_shape`` is one input's shape without the batch axis (as neural-tangents'
        ``init_fn(key, input_shape)``); the module takes ``(batch, *input_shape)``. With
        ``alpha`` the network is wrapped in :class:`~genlab.models.OutputScaled`, which returns
        ``alpha * (f(x; theta) - f(x; theta_0))`` (Chizat, Oyallon & Bach 2019). ``dtype``
        defaults to torch's default dtype.
        """
        from genlab.models._torch import SpecNetwork

        integer(seed, "seed", error=SpecError)
        if self.kind == "diag_linear":
            from genlab.models._diagonal import DiagonalLinear

            check_positive_int(width, "width")
            net = DiagonalLinear(self.check_input_shape(input_shape)[0], init_scale=self.w_std, dtype=dtype)
        else:
            net = SpecNetwork(self, check_positive_int(width, "width"), self.check_input_shape(input_shape), seed=seed, dtype=dtype)
        if alpha is None:
            return net
        from genlab.models._scaled import OutputScaled

        return OutputScaled(net, alpha)


def conv_output_size(size: int, filter_size: int, stride: int, padding: str) -> int:
    """Spatial size after a convolution: ``ceil(size / stride)`` for SAME/CIRCULAR padding,
    ``floor((size - filter) / stride) + 1`` for VALID (TensorFlow / XLA conventions)."""
    if padding == "VALID":
        return (size - filter_size) // stride + 1 if size >= filter_size else 0
    return -(-size // stride)


def same_padding(size: int, filter_size: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of XLA's "SAME": total ``max((ceil(s/t)-1)*t + k - s, 0)``,
    the extra element after."""
    total = max((conv_output_size(size, filter_size, stride, "SAME") - 1) * stride + filter_size - size, 0)
    return total // 2, total - total // 2
