"""The networks: trunk architectures shared by the trainers and the linear probes, built from one place, and the
DCGAN generator of the GAN trainers.

A *trunk* is the convolutional encoder whose layers the paper probes; method heads (rotation classifier,
DeepCluster's top layer, GAN pieces) are not part of it. Every trunk is a sequence of named conv blocks
(convolution, optional BatchNorm, activation), optionally followed by a max-pool, and exposes

* ``trunk.block_names`` -- the probed blocks in order, e.g. ``["conv1", ..., "conv5"]``;
* ``trunk.forward_features(x, upto=None)`` -- each block's output *after its activation* (before any
  max-pool that follows it), up to and including block ``upto``;
* ``trunk(x)`` -- the final feature map (after conv5's max-pool for ``alexnet``, after conv4's activation
  for ``monogan``);
* ``trunk.feature_shapes()`` -- the shape of each of those for the architecture's input size (224 or 32).

Architectures (see docs/probes.md for sources):

* ``alexnet`` -- AlexNet with BatchNorm as in DeepCluster (Caron et al. 2018, ``models/alexnet.py``):
  96-256-384-384-256 filters, kernels 11/5/3/3/3, strides 4/1/1/1/1, 3x3/2 max-pools after conv1, conv2 and
  conv5; optional fixed grayscale+Sobel input layer; ReLU, or LeakyReLU for the BiGAN encoder. Input 224x224.
* ``monogan`` -- the paper's small CIFAR encoder: four convolutions with kernels 7/5/3/3 and strides 3/2/2/1,
  no normalisation (a WGAN-GP critic must not use BatchNorm). Input 32x32. What the paper leaves open
  (``widths``, ``padding``, ``activation``, ``init``) are arguments; their defaults were chosen by measuring
  which reproduce the paper's random-init probe row (docs/protocol.md, "Calibration").
* ``scattering`` -- not learned: kymatio's scattering transform with blocks ``conv1`` (order 1) and ``conv2``
  (order 2), the paper's stand-in for conv1-conv2 (:mod:`mono.learning.scattering`). Arguments ``size`` (32 or
  224), ``J`` (scales; 2 at 32 px and 4 at 224 px unless given) and ``L`` (orientations, 8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mono.learning.errors import UserError

__all__ = [
    "ARCHITECTURES",
    "ACTIVATIONS",
    "CIFAR10_NORMALIZATION",
    "GAN_NORMALIZATION",
    "IMAGENET_NORMALIZATION",
    "LEAKY_RELU_SLOPE",
    "ConvBlock",
    "Sobel",
    "Trunk",
    "build_trunk",
    "canonical_arch_args",
    "init_like",
    "parse_arch_args",
    "stored_arch_args",
    "wgan_gp_init",
    "Generator",
]

ACTIVATIONS = ("relu", "leaky_relu")

IMAGENET_NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
"""ImageNet's channel statistics, which RotNet and DeepCluster normalise alexnet's inputs with."""

CIFAR10_NORMALIZATION = {"mean": [v / 255 for v in (125.3, 123.0, 113.9)], "std": [v / 255 for v in (63.0, 62.1, 66.7)]}
"""CIFAR-10's channel statistics as RotNet's CIFAR-10 code (gidariss/FeatureLearningRotNet, dataloader.py) writes
them; RotNet and the supervised trainer normalise the 32 px trunk's inputs with them."""

GAN_NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
"""Pixels x in [0, 1] enter as 2x - 1, the range of a GAN generator's tanh (BiGAN, MonoGAN)."""
LEAKY_RELU_SLOPE = 0.2
"""Negative slope of LeakyReLU, the usual value for GAN discriminators and BiGAN encoders."""


class Sobel(nn.Module):
    """DeepCluster's fixed input layer: RGB -> grayscale -> horizontal and vertical Sobel responses.

    The filters are non-persistent buffers: never trained, not stored in checkpoints, rebuilt from code.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("gray", torch.full((1, 3, 1, 1), 1.0 / 3.0), persistent=False)
        kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        self.register_buffer("edges", torch.stack([kx, kx.t()]).unsqueeze(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, self.gray), self.edges, padding=1)


class ConvBlock(nn.Module):
    """Convolution, then BatchNorm (or nothing), then the activation: the unit a probe taps."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, batchnorm: bool, activation: str
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding)
        self.norm: nn.Module = nn.BatchNorm2d(out_ch) if batchnorm else nn.Identity()
        self.act = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_RELU_SLOPE)
    raise UserError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


class Trunk(nn.Module):
    """Named conv blocks, each optionally followed by a max-pool, behind an optional fixed input layer."""

    def __init__(
        self,
        arch: str,
        arch_args: Mapping[str, Any],
        input_size: int,
        in_channels: int,
        stem: nn.Module,
        blocks: Mapping[str, ConvBlock],
        pools: Mapping[str, nn.Module],
    ) -> None:
        super().__init__()
        self.arch = arch
        self.arch_args = dict(arch_args)
        self.input_size = input_size
        """Side of the square images the architecture is designed for (224 or 32)."""
        self.in_channels = in_channels
        """Channels entering the first convolution (2 after the Sobel layer, else 3)."""
        self.stem = stem
        self.blocks = nn.ModuleDict(blocks)
        self.pools = nn.ModuleDict(pools)

    @property
    def block_names(self) -> list[str]:
        return list(self.blocks.keys())

    def forward_features(self, x: torch.Tensor, upto: str | None = None) -> dict[str, torch.Tensor]:
        """Each block's output after its activation, in order, stopping after block ``upto``."""
        if upto is not None and upto not in self.blocks:
            raise KeyError(f"{self.arch} has no block {upto!r}; blocks: {', '.join(self.block_names)}")
        features: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for name, block in self.blocks.items():
            x = block(x)
            features[name] = x
            if name == upto:
                break
            if name in self.pools:
                x = self.pools[name](x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name, block in self.blocks.items():
            x = block(x)
            if name in self.pools:
                x = self.pools[name](x)
        return x

    @torch.no_grad()
    def feature_shapes(self, input_size: int | None = None) -> dict[str, tuple[int, int, int]]:
        """(channels, height, width) of every block's output, and of the final map under ``"output"``, for
        square inputs of ``input_size`` (default: the architecture's own); e.g. to size a method head."""
        size = input_size or self.input_size
        was_training = self.training
        self.eval()  # a dry run must not touch BatchNorm statistics
        try:
            shapes = self._dry_run(size)
            if shapes is None:
                smallest = next(s for s in range(size + 1, 4 * self.input_size) if self._dry_run(s) is not None)
                raise UserError(
                    f"{self.arch} needs inputs of at least {smallest}×{smallest} px "
                    f"(its feature maps vanish at {size}×{size}); use larger crops or images"
                )
        finally:
            self.train(was_training)
        return shapes

    def _dry_run(self, size: int) -> dict[str, tuple[int, int, int]] | None:
        """Shapes for a size×size input, or None when a convolution or pooling shrinks it to nothing."""
        x = torch.zeros(1, 3, size, size, device=next(self.parameters()).device)
        try:
            shapes = {name: tuple(f.shape[1:]) for name, f in self.forward_features(x).items()}
            shapes["output"] = tuple(self(x).shape[1:])
        except RuntimeError as error:
            if "size" in str(error).lower():  # "Output size is too small", "Kernel size can't be greater…"
                return None
            raise
        return shapes


# --- architectures -------------------------------------------------------------------------------------

# (name, filters, kernel, stride, padding, max-pool after)
_ALEXNET = [
    ("conv1", 96, 11, 4, 2, True),
    ("conv2", 256, 5, 1, 2, True),
    ("conv3", 384, 3, 1, 1, False),
    ("conv4", 384, 3, 1, 1, False),
    ("conv5", 256, 3, 1, 1, True),
]
# (name, kernel, stride): the paper's section 4.2; widths and padding are arguments
_MONOGAN = [
    ("conv1", 7, 3),
    ("conv2", 5, 2),
    ("conv3", 3, 2),
    ("conv4", 3, 1),
]
INITS = ("wgan_gp", "torch")
"""``wgan_gp``: tflib's He-uniform weights and zero biases (WGAN-GP's code); ``torch``: PyTorch's default
``Conv2d`` init (Kaiming-uniform with a = sqrt(5) and uniform biases in +-1/sqrt(fan_in))."""


def _alexnet(sobel: bool = False, activation: str = "relu") -> Trunk:
    in_channels = 2 if sobel else 3
    blocks, pools, cin = {}, {}, in_channels
    for name, cout, k, s, p, pool in _ALEXNET:
        blocks[name] = ConvBlock(cin, cout, k, s, p, batchnorm=True, activation=activation)
        if pool:
            pools[name] = nn.MaxPool2d(kernel_size=3, stride=2)
        cin = cout
    trunk = Trunk(
        "alexnet",
        {"sobel": sobel, "activation": activation},
        224,
        in_channels,
        Sobel() if sobel else nn.Identity(),
        blocks,
        pools,
    )
    trunk.apply(_init_deepcluster)
    return trunk


def _monogan(activation: str, widths: list[int], padding: list[int], init: str) -> Trunk:
    side = 32
    for (name, k, s), p in zip(_MONOGAN, padding, strict=True):
        side = (side + 2 * p - k) // s + 1
        if side < 1:
            raise UserError(f"monogan: padding {padding} leaves no {name} output for 32 px inputs")
    blocks, cin = {}, 3
    for (name, k, s), cout, p in zip(_MONOGAN, widths, padding, strict=True):
        blocks[name] = ConvBlock(cin, cout, k, s, p, batchnorm=False, activation=activation)
        cin = cout
    args = {"activation": activation, "widths": list(widths), "padding": list(padding), "init": init}
    trunk = Trunk("monogan", args, 32, 3, nn.Identity(), blocks, {})
    if init == "wgan_gp":
        trunk.apply(wgan_gp_init)
    return trunk  # "torch": the layers' own reset_parameters() already ran


def _init_deepcluster(m: nn.Module) -> None:
    """DeepCluster's AlexNet init: conv weights N(0, 2/(k*k*out_channels)), zero biases, BN at identity."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@torch.no_grad()
def wgan_gp_init(module: nn.Module) -> None:
    """WGAN-GP's (igul222/improved_wgan_training, tflib/ops) initialisation, biases 0, BatchNorm at identity:
    linear layers Glorot-uniform U(±√3·√(2/(in+out))); convolutions He-uniform U(±√3·√(4/(fan_in+fan_out)))
    with fan = channels·k², the output fan divided by stride² for convolutions and the input fan for
    transposed ones (apply with Module.apply)."""
    if isinstance(module, nn.Linear):
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (module.in_features + module.out_features))
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        k = module.kernel_size[0] * module.kernel_size[1]
        stride2 = module.stride[0] * module.stride[1]
        fan_in, fan_out = module.in_channels * k, module.out_channels * k
        if isinstance(module, nn.ConvTranspose2d):
            fan_in /= stride2
        else:
            fan_out /= stride2
        bound = math.sqrt(3.0) * math.sqrt(4.0 / (fan_in + fan_out))
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
        return
    else:
        return
    nn.init.uniform_(module.weight, -bound, bound)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _scattering(size: int, J: int, L: int) -> nn.Module:
    from mono.learning.scattering import ScatteringTrunk  # kymatio is imported only when a scattering is built

    return ScatteringTrunk(size, J, L)


_BUILDERS = {"alexnet": _alexnet, "monogan": _monogan, "scattering": _scattering}
_DEFAULT_ARGS: dict[str, dict[str, Any]] = {
    "alexnet": {"sobel": False, "activation": "relu"},
    # chosen by measurement: the combination whose random-init probes land within 2 points of the paper's
    # random row at every layer (docs/protocol.md, "Calibration")
    "monogan": {"activation": "leaky_relu", "widths": [64, 128, 256, 512], "padding": [3, 2, 1, 0], "init": "torch"},
    "scattering": {"size": 32, "J": None, "L": 8},
}
_LEGACY_ARGS: dict[str, dict[str, Any]] = {
    "monogan": {"widths": [64, 128, 256, 512], "padding": [3, 2, 1, 1], "init": "wgan_gp"},
}
"""What an argument meant before it existed: checkpoints written then lack it, and are read with these."""
ARCHITECTURES = tuple(_BUILDERS)


def canonical_arch_args(arch: str, **arch_args: Any) -> dict[str, Any]:
    """``arch_args`` completed with the defaults and checked: the exact dict a checkpoint stores."""
    return _complete(arch, arch_args, stored=False)


def stored_arch_args(arch: str, arch_args: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments read from a checkpoint, completed and checked: an argument missing there takes its value
    from before it existed, not today's default, so an old checkpoint keeps meaning what it meant."""
    return _complete(arch, arch_args, stored=True)


def _complete(arch: str, arch_args: Mapping[str, Any], stored: bool) -> dict[str, Any]:
    if arch not in _BUILDERS:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    defaults = _DEFAULT_ARGS[arch]
    unknown = sorted(set(arch_args) - set(defaults))
    if unknown:
        raise UserError(
            f"{arch} takes no argument {', '.join(map(repr, unknown))}; its arguments: {', '.join(defaults)}"
        )
    args = {**defaults, **(_LEGACY_ARGS.get(arch, {}) if stored else {}), **arch_args}
    if arch == "scattering":
        return _scattering_args(args)
    if "sobel" in args and not isinstance(args["sobel"], bool):
        raise UserError(f"{arch}: sobel must be true or false, not {args['sobel']!r}")
    if args["activation"] not in ACTIVATIONS:
        raise UserError(f"{arch}: unknown activation {args['activation']!r}; choose one of {', '.join(ACTIVATIONS)}")
    if "init" in args and args["init"] not in INITS:
        raise UserError(f"{arch}: unknown init {args['init']!r}; choose one of {', '.join(INITS)}")
    for key, smallest in (("widths", 1), ("padding", 0)):
        if key in args:
            args[key] = _int_list(arch, key, args[key], len(_MONOGAN), smallest)
    return args


def _scattering_args(args: dict[str, Any]) -> dict[str, Any]:
    from mono.learning.scattering import SCATTERING_J

    def integer(key: str, value: Any, smallest: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            raise UserError(f"scattering: {key} must be an integer >= {smallest}, not {value!r}")
        return value

    size = args["size"]
    if size not in SCATTERING_J:
        raise UserError(
            f"scattering: size must be 32 (the cifar protocol) or 224 (the imagenet protocol), not {size!r}"
        )
    J = SCATTERING_J[size] if args["J"] is None else integer("J", args["J"], 1)
    if size % 2**J:
        raise UserError(f"scattering: J={J} needs a size divisible by 2^J={2**J}; {size} is not")
    return {"size": size, "J": J, "L": integer("L", args["L"], 1)}


def _int_list(arch: str, key: str, value: Any, length: int, smallest: int) -> list[int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != length
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= smallest for v in value)
    ):
        raise UserError(f"{arch}: {key} must be {length} integers >= {smallest}, not {value!r}")
    return list(value)


def parse_arch_args(text: str) -> dict[str, Any]:
    """``"widths=96,256,384,384 init=torch"`` -> ``{"widths": [96, 256, 384, 384], "init": "torch"}``.

    Space-separated ``key=value`` pairs; a value with commas is a list of integers, ``true``/``false`` a
    bool, digits an integer, anything else a string. Checking the values is :func:`canonical_arch_args`'s job.
    """
    args: dict[str, Any] = {}
    for pair in text.split():
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise UserError(f"--arch-args: expected key=value pairs separated by spaces, not {pair!r}")
        if "," in value:
            try:
                args[key] = [int(v) for v in value.split(",")]
            except ValueError:
                raise UserError(f"--arch-args: {key} must be integers separated by commas, not {value!r}") from None
        elif value.lower() in ("true", "false"):
            args[key] = value.lower() == "true"
        elif value.lstrip("-").isdigit():
            args[key] = int(value)
        else:
            args[key] = value
    return args


def init_like(arch: str, arch_args: Mapping[str, Any], module: nn.Module) -> nn.Module:
    """Initialise ``module``'s convolutions (and BatchNorms) as ``arch`` initialises its own, in place: for a
    block built outside :func:`build_trunk`, e.g. one that takes another number of input channels."""
    args = canonical_arch_args(arch, **dict(arch_args))
    if arch == "alexnet":
        module.apply(_init_deepcluster)
    elif arch == "monogan" and args["init"] == "wgan_gp":
        module.apply(wgan_gp_init)
    elif arch == "monogan":
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
    else:
        raise UserError(f"{arch} has nothing to initialise")
    return module


def build_trunk(arch: str, **arch_args: Any) -> Trunk:
    """Build a randomly initialised trunk; the init draws from torch's global RNG (seed it first).

    ``arch_args``: ``activation`` ("relu" or "leaky_relu") for both; ``sobel`` (alexnet only, default
    False); ``widths``, ``padding`` (4 integers each) and ``init`` ("wgan_gp" or "torch") for monogan;
    ``size``, ``J`` and ``L`` for scattering (which has nothing random). Defaults in ``_DEFAULT_ARGS``.
    Unknown names or values raise :class:`UserError`.
    """
    args = canonical_arch_args(arch, **arch_args)
    return _BUILDERS[arch](**args)


# ---------------------------------------------------------------------------------------------------------------
# The DCGAN generator of the two GAN trainers (BiGAN, MonoGAN), which `mono-train sample` rebuilds from a
# checkpoint. Its images live in [-1, 1] (GAN_NORMALIZATION), as in DCGAN and both original codes.

PRIORS = ("uniform", "normal")
"""Latent priors: U(-1, 1)^d (BiGAN) and N(0, 1)^d (WGAN-GP)."""


def sample_latent(
    prior: str, n: int, dim: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """n latent codes drawn on the CPU from `generator` (so a run's noise does not depend on the device)."""
    if prior == "uniform":
        z = torch.rand(n, dim, generator=generator) * 2 - 1
    elif prior == "normal":
        z = torch.randn(n, dim, generator=generator)
    else:
        raise ValueError(f"unknown prior {prior!r}; choose one of {', '.join(PRIORS)}")
    return z.to(device)


def upsamplings(image_size: int) -> int:
    """How many stride-2 layers take a 4×4 map to `image_size`, which must be 4·2^n (8, 16, 32, 64, 128...)."""
    n = round(math.log2(max(image_size, 1) / 4))
    if n < 1 or 4 * 2**n != image_size:
        raise UserError(f"a generator makes images of 4·2^n pixels (8, 16, 32, 64, 128, ...), not {image_size}")
    return n


class Generator(nn.Module):
    """DCGAN-style generator (Radford et al. 2016): z -> linear -> 4×4 map -> stride-2 5×5 transposed
    convolutions, each halving the width and doubling the side -> 3 channels, tanh.

    The linear layer's output is batch-normalised per unit before the reshape, and every hidden transposed
    convolution is followed by BatchNorm and ReLU, as in both WGAN-GP's `gan_cifar.py` and BiGAN's
    `deconvnet_64`. `width` is the last hidden layer's width (WGAN-GP's DIM; BiGAN's gen_net_size).
    With `latent_skip`, z also enters every hidden layer as a learned per-channel bias before its
    BatchNorm (BiGAN's `apply_cond`). `arch`/`arch_args` rebuild it from a checkpoint.
    """

    arch = "dcgan"

    def __init__(
        self, latent_dim: int, image_size: int, width: int = 64, prior: str = "normal", latent_skip: bool = False
    ):
        super().__init__()
        if prior not in PRIORS:
            raise UserError(f"unknown latent prior {prior!r}; choose one of {', '.join(PRIORS)}")
        if latent_dim < 1 or width < 1:
            raise UserError("the latent dimension and the generator width must be positive")
        self.arch_args = {
            "latent_dim": latent_dim,
            "image_size": image_size,
            "width": width,
            "prior": prior,
            "latent_skip": latent_skip,
        }
        widths = [width * 2**i for i in reversed(range(upsamplings(image_size)))]
        self.start = widths[0]
        self.project = nn.Linear(latent_dim, widths[0] * 16, bias=False)
        self.project_norm = nn.BatchNorm1d(widths[0] * 16)
        self.ups = nn.ModuleList(_upsample(a, b) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths[1:])
        self.latent_biases = (
            nn.ModuleList(nn.Linear(latent_dim, w, bias=False) for w in widths[1:]) if latent_skip else None
        )
        self.to_rgb = _upsample(widths[-1], 3, bias=True)

    @property
    def latent_dim(self) -> int:
        return self.arch_args["latent_dim"]

    def sample_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_latent(self.arch_args["prior"], n, self.latent_dim, generator, self.project.weight.device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.project_norm(self.project(z))).view(-1, self.start, 4, 4)
        for i, (up, norm) in enumerate(zip(self.ups, self.norms)):
            h = up(h)
            if self.latent_biases is not None:
                h = h + self.latent_biases[i](z)[:, :, None, None]
            h = F.relu(norm(h))
        return torch.tanh(self.to_rgb(h))


def _upsample(cin: int, cout: int, bias: bool = False) -> nn.ConvTranspose2d:
    """5×5 transposed convolution, stride 2, output exactly twice the input side (TF's "SAME");
    no bias before a BatchNorm, which has its own."""
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1, bias=bias)
