"""DeepFinder object lists: the in-memory list of dicts and its XML file (``<objlist><object .../>``).

The in-memory form is exactly DeepFinder's (``deepfinder.utils.objl``): one dict per particle with keys
``tomo_idx, obj_id, label, x, y, z, psi, phi, the, cluster_size`` (None when absent), coordinates in voxels of
the tomogram, angles in degrees. Any further keys are carried through untouched and written as extra XML
attributes, so lists pass unchanged between DeepFinder and this package.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lxml import etree

from .files import InputError, atomic_path, require_file

OBJL_KEYS = ("tomo_idx", "obj_id", "label", "x", "y", "z", "psi", "phi", "the", "cluster_size")
_XML_NAME = {"label": "class_label"}  # in-memory key -> XML attribute
_ORIENT = ("psi", "phi", "the")

Objl = list[dict[str, Any]]


def new_object(
    label: int,
    x: float,
    y: float,
    z: float,
    *,
    tomo_idx: int | None = None,
    obj_id: int | None = None,
    psi: float | None = None,
    phi: float | None = None,
    the: float | None = None,
    cluster_size: float | None = None,
    **extra: Any,
) -> dict:
    """One object-list entry with DeepFinder's keys (coordinates in voxels, angles in degrees)."""
    obj = {
        "tomo_idx": tomo_idx,
        "obj_id": obj_id,
        "label": int(label),
        "x": float(x),
        "y": float(y),
        "z": float(z),
        "psi": psi,
        "phi": phi,
        "the": the,
        "cluster_size": cluster_size,
    }
    obj.update(extra)
    return obj


def _number(text: str, cast, path: Path, elem, attr: str):
    """The attribute as a finite float, or an int (an integral value) for ``cast=int``."""
    kind = "a finite number" if cast is float else "an integer"
    try:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        if cast is int:
            if value != int(value):
                raise ValueError(text)
            value = int(value)
    except (ValueError, OverflowError):
        raise InputError(
            f"{path}: line {elem.sourceline}: attribute '{attr}' must be {kind}, got {text[:40]!r}"
        ) from None
    return value


def _score(text: str) -> int | float:
    """``cluster_size`` is an int in DeepFinder but other tools write float scores: keep both."""
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def read_objl(path: str | os.PathLike) -> Objl:
    """Read a DeepFinder XML object list into DeepFinder's list of dicts.

    Required attributes: ``class_label, x, y, z``. Unknown attributes are kept as string values.
    Raises InputError naming the file, the element's line and the attribute on bad content.
    """
    path = require_file(path, "object list")
    try:
        root = etree.parse(str(path)).getroot()
    except (etree.XMLSyntaxError, OSError) as exc:  # lxml reports bad encodings as OSError
        raise InputError(f"{path}: not a valid XML file ({exc})") from None
    if root.tag != "objlist":
        raise InputError(f"{path}: root element is <{root.tag}>, expected <objlist> (DeepFinder object list)")
    objl: Objl = []
    for elem in root:
        if not isinstance(elem.tag, str):  # comments, processing instructions
            continue
        if elem.tag != "object":
            raise InputError(f"{path}: line {elem.sourceline}: unexpected element <{elem.tag}>")
        objl.append(_read_object(elem, path))
    return objl


def _read_object(elem, path: Path) -> dict:
    attrs = dict(elem.attrib)
    for attr in ("class_label", "x", "y", "z"):
        if attr not in attrs:
            raise InputError(f"{path}: line {elem.sourceline}: <object> lacks required attribute '{attr}'")
    obj: dict[str, Any] = {key: None for key in OBJL_KEYS}
    obj["label"] = _number(attrs.pop("class_label"), int, path, elem, "class_label")
    for key in ("x", "y", "z"):
        obj[key] = _number(attrs.pop(key), float, path, elem, key)
    for key in ("tomo_idx", "obj_id"):
        if key in attrs:
            obj[key] = _number(attrs.pop(key), int, path, elem, key)
    present = [key for key in _ORIENT if key in attrs]
    if present and len(present) != len(_ORIENT):
        missing = ", ".join(k for k in _ORIENT if k not in attrs)
        raise InputError(f"{path}: line {elem.sourceline}: angles psi, phi and the go together; {missing} missing")
    for key in present:
        obj[key] = _number(attrs.pop(key), float, path, elem, key)
    if "cluster_size" in attrs:
        text = attrs.pop("cluster_size")
        _number(text, float, path, elem, "cluster_size")
        obj["cluster_size"] = _score(text)
    obj.update(attrs)  # unknown attributes survive untouched
    return obj


def _format(key: str, value: Any) -> str:
    if key in ("x", "y", "z"):
        return f"{float(value):.3f}"
    if key in _ORIENT:
        return repr(float(value))
    if key in ("tomo_idx", "obj_id", "label"):
        return str(int(value))
    if key == "cluster_size":
        return str(int(value)) if float(value).is_integer() and not isinstance(value, float) else repr(float(value))
    return str(value)


def objl_to_xml_tree(objl: Iterable[dict]) -> etree._Element:
    """The ``<objlist>`` element of an object list (attribute order as DeepFinder writes it)."""
    root = etree.Element("objlist")
    for i, obj in enumerate(objl):
        if obj.get("label") is None:
            raise InputError(f"object {i} has no 'label' (the class); cannot write it")
        elem = etree.SubElement(root, "object")
        for key in OBJL_KEYS:
            value = obj.get(key)
            if value is None:
                continue
            if key in _ORIENT and any(obj.get(k) is None for k in _ORIENT):
                raise InputError(f"object {i}: psi, phi and the must be given all three or none")
            elem.set(_XML_NAME.get(key, key), _format(key, value))
        for key, value in obj.items():
            if key not in OBJL_KEYS and value is not None:
                elem.set(str(key), str(value))
    return root


def write_objl(objl: Iterable[dict], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write an object list as DeepFinder XML, atomically; extra keys become extra attributes."""
    root = objl_to_xml_tree(objl)
    with atomic_path(path, overwrite) as tmp:
        etree.ElementTree(root).write(str(tmp), pretty_print=True)
    return Path(path)


def objl_get_class(objl: Objl, label: int) -> Objl:
    """The objects of one class (DeepFinder's ``get_class``)."""
    return [obj for obj in objl if obj["label"] == label]


def objl_get_tomo(objl: Objl, tomo_idx: int) -> Objl:
    """The objects of one tomogram (DeepFinder's ``get_tomo``)."""
    return [obj for obj in objl if obj["tomo_idx"] == tomo_idx]
