"""How attacks, defenses and objectives are written in every table, legend and flag of the report:
as their papers write them (``pga-dagger`` -> ``PgA†``, ``prosgan`` -> ``ProS-GAN``). Registry
names stay lower case everywhere else (grid files, records, the command line)."""

from __future__ import annotations

ATTACK_NAMES = {
    "pga": "PgA",
    "pga-dagger": "PgA†",
    "hag": "HAG",
    "sdha": "SDHA",
    "dhta": "DHTA",
    "p2p": "P2P",
    "tha": "THA",
    "prosgan": "ProS-GAN",
    "nag": "NAG",
    "fgsm": "FGSM",
    "ifgsm": "I-FGSM",
    "mainstay": "mainstay",
}
DEFENSE_NAMES = {"saat": "SAAT", "atrdh": "ATRDH", "cgat": "CgAT", "pga-at": "PgA-AT", "none": "none"}
OBJECTIVE_NAMES = {"dph": "DPH", "dpsh": "DPSH", "hashnet": "HashNet", "csq": "CSQ", "dch": "DCH", "dsdh": "DSDH"}
DATASET_NAMES = {"flickr25k": "FLICKR-25K", "nus-wide": "NUS-WIDE", "ms-coco": "MS-COCO",
                 "imagenet100": "ImageNet-100", "cifar10": "CIFAR-10"}
BACKBONE_NAMES = {"alexnet": "AlexNet", "vgg11": "VGG11", "resnet18": "ResNet18", "resnet50": "ResNet50"}


def display_name(name: str) -> str:
    """The paper spelling of an attack, defense, objective, dataset or backbone registry name;
    an unknown name (a user's own registration) is shown as it is."""
    key = str(name)
    for table in (ATTACK_NAMES, DEFENSE_NAMES, OBJECTIVE_NAMES, DATASET_NAMES, BACKBONE_NAMES):
        if key in table:
            return table[key]
    return key


__all__ = ["display_name", "ATTACK_NAMES", "DEFENSE_NAMES", "OBJECTIVE_NAMES", "DATASET_NAMES", "BACKBONE_NAMES"]
