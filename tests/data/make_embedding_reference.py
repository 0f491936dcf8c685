"""Regenerate tests/data/shipped_embeddings.json after a DELIBERATE change of a shipped model.

    python tests/data/make_embedding_reference.py

The input is analytic (``reference_volumes``): no random generator, no simulator, so only the model file and
the embedding code (normalisation, axis order, dtype, batching) can change the stored 32-D outputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
REFERENCE = HERE / "shipped_embeddings.json"
MODELS = ("shrec21", "general")


def reference_volumes(box: int = 40) -> np.ndarray:
    """Three asymmetric analytic volumes [z, y, x]: blobs of different sizes, a rod, a shell."""
    z, y, x = np.meshgrid(*[np.arange(box, dtype=np.float64)] * 3, indexing="ij")

    def blob(cz, cy, cx, s):
        return np.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * s**2))

    r = np.sqrt((z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2)
    vols = [
        blob(20, 20, 20, 5) + 0.6 * blob(20, 20, 29, 3),
        blob(14, 20, 20, 2.5) + blob(26, 20, 20, 2.5) + 0.5 * np.exp(-((y - 20) ** 2 + (x - 22) ** 2) / 4.0),
        np.exp(-((r - 9) ** 2) / 3.0) * (1 + 0.3 * np.cos(z / 3.0)) + 0.4 * blob(22, 18, 25, 2),
    ]
    return -np.stack(vols).astype(np.float32)  # dark protein on a bright background, like cryo-ET


def model_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    from deepfinder_unsup.embed import Embedder, resolve_model_path

    doc = {}
    for name in MODELS:
        path = resolve_model_path(name)
        emb = Embedder(name, tta=False).transform(reference_volumes())  # the network's own output
        doc[name] = {"sha256": model_digest(path), "embeddings": np.round(emb.astype(float), 6).tolist()}
    REFERENCE.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
