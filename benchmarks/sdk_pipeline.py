"""The CMU-MultimodalSDK's own pipeline (``pip install cmu-multimodal-sdk``), the baseline of bench_sdk.py.

Called the way the SDK's examples call it: ``mmdataset(recipe)``, ``align(words, collapse_functions=[avg])``,
``impute(words)``, ``deploy(folder, filenames)`` for `align`; for `prepare` the labels are added, everything is
aligned to them, and the tensors are stacked. The packaged copy (0.0.6) fails in ``impute`` on Python 3 and has
neither ``hard_unify`` nor ``get_tensors``: imputation is done here in a few lines, and the tensors are stacked by
the NumPy oracle's transcription of ``get_tensors`` (mfm_bench.align.oracle), applied to the SDK's aligned data.
Alignment and writing, the costly steps, are the SDK's own.

Also a script, so the SDK's align-and-write can be timed as a whole process, like `mfm-bench align`::

    python benchmarks/sdk_pipeline.py OUT_DIR REFERENCE NAME=PATH.csd ...
"""

from __future__ import annotations

import sys

import numpy as np


def avg(intervals, features):
    """The collapse function of the SDK's examples (an average over the rows inside a word)."""
    return np.average(features, axis=0)


def sdk_align(paths: dict[str, str], reference: str, impute: bool = True):
    """An mmsdk ``mmdataset`` of ``paths``, aligned to ``reference`` with the average (and imputed)."""
    from mmsdk import mmdatasdk
    from mmsdk.mmdatasdk.dataset import dataset as sdk_dataset

    # this copy's epsilon is 10e-4; the CMU-MultimodalSDK's own (and ours, docs/align.md) is 10e-6
    sdk_dataset.epsilon = 10e-6
    dataset = mmdatasdk.mmdataset(dict(paths))
    dataset.align(reference, collapse_functions=[avg])
    if impute:
        _impute(dataset, reference)
    return dataset


def _impute(dataset, reference: str) -> None:
    """``mmdataset.impute(reference)``, which this copy cannot run on Python 3 (it indexes ``dict.keys()``): zero
    features with the reference entry's intervals for every reference entry another sequence lacks."""
    for name in dataset.keys():
        if name == reference:
            continue
        data = dataset[name].data
        dims = list(next(iter(data.values()))["features"].shape[1:])
        for key, entry in dataset[reference].data.items():
            if key not in data:
                data[key] = {"intervals": entry["intervals"], "features": np.zeros([1] + dims)}


def sdk_align_and_write(paths: dict[str, str], reference: str, out_dir: str) -> None:
    """What `mfm-bench align --reference REF --impute --out DIR` does, done by the SDK: align, then deploy."""
    dataset = sdk_align(paths, reference)
    dataset.deploy(out_dir, {name: name for name in dataset.keys()})


def sdk_prepare(paths: dict[str, str], words: str, labels: str, seq_len: int, folds) -> dict:
    """The word-level recipe with the SDK: align to words (average), impute, add the labels, align to them, then
    stack fixed-length tensors per fold (what `prepare_word_level` returns)."""
    from mfm_bench.align import oracle

    dataset = sdk_align({n: p for n, p in paths.items() if n != labels}, words)
    dataset.add_computational_sequences({labels: paths[labels]}, destination=None)
    dataset.align(labels)
    data = {
        name: {key: (entry["intervals"][()], entry["features"][()]) for key, entry in dataset[name].data.items()}
        for name in dataset.keys()
    }
    return oracle.get_tensors(data, seq_len, folds, non_sequences=[labels])


def main(argv: list[str]) -> int:
    out_dir, reference, *items = argv
    sdk_align_and_write(dict(item.split("=", 1) for item in items), reference, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
