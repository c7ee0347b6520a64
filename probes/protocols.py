"""The two linear-probe protocols of the paper (section 4.1, after Zhang et al. 2017) and their schedule.

* ``imagenet`` -- for AlexNet: shorter side resized to 256, random 224 crops with horizontal flips for
  training, 10-crop evaluation (4 corners and centre, and their flips; scores averaged); each probed layer
  max-pooled to about 9,000 dimensions (9600, 9216, 9600, 9600, 9216).
* ``cifar`` -- for the 32x32 ``monogan`` encoder: native images, no augmentation and no dimensionality
  reduction, so frozen features are computed once and every probe trains on the cache.

Both train all probes together with SGD (momentum 0.9) for 36 epochs, learning rate 0.01 divided by 5 at
epochs 5, 15 and 25. Differences from the authors' public code are listed in docs/probes.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mono.learning.errors import UserError
from mono.learning.schedules import step_decay

__all__ = [
    "ARCH_PROTOCOL",
    "PROTOCOLS",
    "Protocol",
    "Schedule",
    "check_protocol",
    "default_protocol",
    "sized_for_protocol",
]


@dataclass(frozen=True)
class Schedule:
    """SGD settings shared by both protocols; epochs are counted from 0."""

    epochs: int = 36
    lr: float = 0.01
    milestones: tuple[int, ...] = (5, 15, 25)
    gamma: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 1e-5
    batch_size: int = 192

    def lr_at(self, epoch: int) -> float:
        """Learning rate for 0-based ``epoch``: ``lr`` times ``gamma`` per milestone reached."""
        return step_decay(self.lr, epoch, self.milestones, self.gamma)

    def as_dict(self) -> dict:
        return {**asdict(self), "milestones": list(self.milestones)}


@dataclass(frozen=True)
class Protocol:
    name: str
    input_size: int
    """Side of the square crop fed to the trunk."""
    resize: int | None
    """Shorter side the images are resized to before cropping (None: fed at native size)."""
    augment: bool
    """Random crops and flips during training (then features cannot be cached)."""
    ten_crop: bool
    """Evaluate on 10 crops and average their scores."""
    reduce: bool
    """Max-pool each layer to about 9k dimensions before its probe."""

    @property
    def caches_features(self) -> bool:
        return not self.augment and not self.ten_crop


PROTOCOLS = {
    "imagenet": Protocol("imagenet", input_size=224, resize=256, augment=True, ten_crop=True, reduce=True),
    "cifar": Protocol("cifar", input_size=32, resize=None, augment=False, ten_crop=False, reduce=False),
}

ARCH_PROTOCOL = {"alexnet": "imagenet", "monogan": "cifar"}
"""The protocol each architecture is evaluated with in the paper; the only one it accepts. A scattering trunk
takes the protocol of its input size (:func:`default_protocol`)."""

_WHY_NOT = {
    ("alexnet", "cifar"): (
        "alexnet needs the imagenet protocol: on native 32x32 images its stride-4 conv1 and three max-pools "
        "shrink conv3-conv5 to 1x1 and conv5's pool fails; use --protocol imagenet, which upscales CIFAR "
        "images to 256 px and takes 224 crops"
    ),
    ("monogan", "imagenet"): (
        "monogan needs the cifar protocol: it is a 32x32 encoder, and the imagenet protocol's 224 crops "
        "and 9k-dimension pooling are defined for alexnet only; use --protocol cifar"
    ),
}


def default_protocol(arch: str, arch_args: Mapping[str, Any] | None = None) -> str | None:
    """The protocol ``arch`` (with ``arch_args``) is evaluated with, or None if there is none."""
    if arch == "scattering":
        size = (arch_args or {}).get("size", 32)
        return next((name for name, p in PROTOCOLS.items() if p.input_size == size), None)
    return ARCH_PROTOCOL.get(arch)


def sized_for_protocol(arch: str, arch_args: Mapping[str, Any], protocol: str | None) -> dict[str, Any]:
    """``arch_args`` with a scattering trunk's ``size`` taken from ``protocol`` when the user gave none."""
    args = dict(arch_args)
    if arch == "scattering" and "size" not in args and protocol in PROTOCOLS:
        args["size"] = PROTOCOLS[protocol].input_size
    return args


def check_protocol(arch: str, protocol: str, arch_args: Mapping[str, Any] | None = None) -> Protocol:
    """The protocol named ``protocol`` if ``arch`` can be evaluated with it, else a UserError saying why."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    expected = default_protocol(arch, arch_args)
    if expected is None:
        raise UserError(f"no probe protocol defined for architecture {arch!r}")
    if protocol != expected and arch == "scattering":
        size = PROTOCOLS[protocol].input_size
        raise UserError(
            f"a scattering trunk for {PROTOCOLS[expected].input_size} px images needs the {expected} "
            f"protocol; for the {protocol} protocol build it for {size} px (--arch-args size={size})"
        )
    if protocol != expected:
        raise UserError(_WHY_NOT.get((arch, protocol), f"{arch} needs --protocol {expected}"))
    return PROTOCOLS[protocol]
