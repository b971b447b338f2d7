"""A deterministic stand-in for a sentence-embedding model: no download, same vector every run.

It hashes character trigrams of the text into 384 buckets and normalises the counts, so
texts that share words land near each other. It is NOT a language model: it knows
spelling, not meaning. To use a real model when sentence-transformers is installed (also 384
dimensions, and a list of floats like this one):

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("all-MiniLM-L6-v2")
    embed = lambda text: model.encode(text).tolist()
"""

import hashlib
import math

DIM = 384


def embed(text: str, dim: int = DIM) -> list[float]:
    """Return a unit-length vector of ``dim`` floats for ``text``."""
    counts = [0.0] * dim
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        digest = hashlib.blake2b(padded[i:i + 3].encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dim
        counts[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(c * c for c in counts)) or 1.0
    return [round(c / norm, 6) for c in counts]
