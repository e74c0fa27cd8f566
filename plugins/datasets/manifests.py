"""Pinned public sources of the built-in datasets: where each file is downloaded from, its content hash, and the
standard folds of the CMU datasets. The plugins turn these into their :class:`~mfm_bench.contracts.DataDeclaration`.

Facts, not code: the MFN h5 files of github.com/pliang279/MFN at commit b0453fb6e21b581c796246a0c32a6551f2028c1b with
their git blob ids
(sha1 of ``b"blob <size>\\0" + bytes``), and the CMU-MultimodalSDK computational sequences (.csd) of
CMU-MOSI, CMU-MOSEI and POM as listed in that SDK's ``mmsdk/mmdatasdk/dataset/standard_datasets/*/*.py``
(no hashes are published for those, so they are checked for being readable HDF5 only).
"""

from __future__ import annotations

import json
from functools import cache

MFN_REPO = "pliang279/MFN"
MFN_COMMIT = "b0453fb6e21b581c796246a0c32a6551f2028c1b"
MFN_BASE_URL = f"https://raw.githubusercontent.com/{MFN_REPO}/{MFN_COMMIT}"

#: (path in the MFN repository, git blob sha1, size in bytes or None when unknown)
MFN_FILES: list[tuple[str, str, int | None]] = [
    ("data/X_test.h5", "accb7e77162a38b9e80d795f0145b1bf310dc17c", None),
    ("data/X_train.h5", "174f63f5ceea7af785519d94506b28b1ffcbad74", None),
    ("data/X_valid.h5", "b81c5cd24776541a3706d4805bd30e306c5e24d7", None),
    ("data/y_test.h5", "45c2e02dd0a8dd80f6e8e6538049a3c83043d5cf", 7632),
    ("data/y_train.h5", "2908208fec855004610658b6ad7b7f686a82e222", 12416),
    ("data/y_valid.h5", "126769487590e1d1116e6ae7b3cadd27a0d16171", 3976),
    ("new_data/mmmo/audio_test.h5", "2484532710b824fb8c612fdeb24a806502b70275", 949248),
    ("new_data/mmmo/audio_train.h5", "43b53d1e063c3f2925d11829ce990be72428b545", 2606848),
    ("new_data/mmmo/audio_valid.h5", "4ab80596e7d4cdefceb3ff00e7c7a16ebad465a0", 475648),
    ("new_data/mmmo/text_test_emb.h5", "d80d925e138bd5d8bcd4af632a708578170a4829", 3842048),
    ("new_data/mmmo/text_train_emb.h5", "9d3e4469b95a0b8efc6772b5ea3e64b77ad36ae4", None),
    ("new_data/mmmo/text_valid_emb.h5", "69a229e2c06882fe885d384e6ff5a9f5e8355209", 1922048),
    ("new_data/mmmo/video_test.h5", "ef67d8472c9134fbdc83e26158eec76635d81f6a", 462848),
    ("new_data/mmmo/video_train.h5", "e6fdbe8dd083a0e99783624d04338c8f349565e7", 1269248),
    ("new_data/mmmo/video_valid.h5", "4a55b478f8dea90aaf6d4133cb4ac24249d8e20c", 232448),
    ("new_data/mmmo/y_test.h5", "19f9bcbc33e4f3af07c0e5ba78a19130edf3a4fb", 2688),
    ("new_data/mmmo/y_train.h5", "cc283761a63a872a03767aea5ef76da437192054", 3808),
    ("new_data/mmmo/y_valid.h5", "1eea5176f2b25c48edf3066113bc52d4f7bb55dd", 2368),
    ("new_data/pom/audio_test.h5", "d42383a50001adba3fa9e9e1eb274680df37b7af", 1398688),
    ("new_data/pom/audio_train.h5", "c8f1258e329179f6c9f2850052f688eac189ebcc", 4130048),
    ("new_data/pom/audio_valid.h5", "75bd708dd888724aac2ac01c82012de1920a255c", 690048),
    ("new_data/pom/text_test_emb.h5", "6274cdcf6d3bdb17a2cd07cfa958ae1bfcbfa86a", None),
    ("new_data/pom/text_valid_emb.h5", "da043264d2bac6f76eb54485ee109e51974303c8", None),
    ("new_data/pom/video_test.h5", "f8b8895043de3efd32793811fd80dd8f39ef88f7", 1333728),
    ("new_data/pom/video_train.h5", "98feefc3455a8aa8a5f0db51088394e1016f5385", 3938048),
    ("new_data/pom/video_valid.h5", "632296802b4ae09bbd9d46fa1e28d95c15af6b12", 658048),
    ("new_data/pom/y_test.h5", "ffde5d237956ff7836e85aaf212498fc33fe9989", 29656),
    ("new_data/pom/y_train.h5", "03d26f379d3084d5bf55a3fafa8b9ee08c1e9e35", 83648),
    ("new_data/pom/y_valid.h5", "0342c9c9fce6595249c6bb8640b7c168ae9454b3", 15648),
    ("new_data/youtube/audio_test.h5", "f73e0f29616ad0f35ec631617708abea82e5c051", 712448),
    ("new_data/youtube/audio_train.h5", "bde59768a8db0631b3f7c9d2ba6700724977f218", 2050368),
    ("new_data/youtube/audio_valid.h5", "bb52e78b0c834e1ecbae314d4ceafdf0a729903f", 428288),
    ("new_data/youtube/text_test_emb.h5", "bebbe78bae084979bda084c0ed25eec3602f7551", 2882048),
    ("new_data/youtube/text_train_emb.h5", "cd22fdf427e97af0de5c8356feedd84aba9a81e1", None),
    ("new_data/youtube/text_valid_emb.h5", "979109ee715d72603d0a5121b3eaaddb65a48e6c", 1730048),
    ("new_data/youtube/video_test.h5", "4db8037d639ae864468354e959cce04336d79f4c", 347648),
    ("new_data/youtube/video_train.h5", "3b5905e3365a43c90b4778ea6a64f167926c4d8b", 998528),
    ("new_data/youtube/video_valid.h5", "e1a49a2b078f3b2bd3af190a250f1a557faeabdc", 209408),
    ("new_data/youtube/y_test.h5", "b7599aca28cf1d0121f9ae98653c61f6330af03d", 2768),
    ("new_data/youtube/y_train.h5", "a55e0fa28c69c8f44d043bfa4336d3675af0f720", 4124),
    ("new_data/youtube/y_valid.h5", "b6c4b35a0cc94ece7524fa2bbf17ed806a9cb738", 2480),
]

#: dataset plugin name -> (folder in the MFN repository, local folder under ``mfn-h5/``)
MFN_FOLDERS = {
    "cmu-mosi": ("data", "mosi"),
    "ict-mmmo": ("new_data/mmmo", "mmmo"),
    "youtube": ("new_data/youtube", "youtube"),
    "pom": ("new_data/pom", "pom"),
}

CMU_BASE_URL = "http://immortal.multicomp.cs.cmu.edu"

#: dataset -> {feature name: URL path under CMU_BASE_URL} (CMU-MultimodalSDK standard_datasets, current names)
CSD_FILES: dict[str, dict[str, str]] = {
    "cmu-mosi": {
        "words": "/CMU-MOSI/language/CMU_MOSI_TimestampedWords.csd",
        "glove_vectors": "/CMU-MOSI/language/CMU_MOSI_TimestampedWordVectors.csd",
        "COVAREP": "/CMU-MOSI/acoustic/CMU_MOSI_COVAREP.csd",
        "FACET 4.1": "/CMU-MOSI/visual/CMU_MOSI_Visual_Facet_41.csd",
        "FACET 4.2": "/CMU-MOSI/visual/CMU_MOSI_Visual_Facet_42.csd",
        "OpenFace 2": "/CMU-MOSI/visual/CMU_MOSI_Visual_OpenFace_2.csd",
        "labels": "/CMU-MOSI/labels/CMU_MOSI_Opinion_Labels.csd",
    },
    "cmu-mosei": {
        "words": "/CMU-MOSEI/language/CMU_MOSEI_TimestampedWords.csd",
        "glove_vectors": "/CMU-MOSEI/language/CMU_MOSEI_TimestampedWordVectors.csd",
        "COVAREP": "/CMU-MOSEI/acoustic/CMU_MOSEI_COVAREP.csd",
        "FACET 4.2": "/CMU-MOSEI/visual/CMU_MOSEI_VisualFacet42.csd",
        "OpenFace 2": "/CMU-MOSEI/visual/CMU_MOSEI_VisualOpenFace2.csd",
        "labels": "/CMU-MOSEI/labels/CMU_MOSEI_Labels.csd",
    },
    "pom": {
        "words": "/POM/language/POM_TimestampedWords.csd",
        "glove_vectors": "/POM/language/POM_TimestampedWordVectors.csd",
        "COVAREP": "/POM/acoustic/POM_COVAREP.csd",
        "FACET 4.2": "/POM/visual/POM_Facet_42.csd",
        "OpenFace 2": "/POM/visual/POM_OpenFace2.csd",
        "labels": "/POM/labels/POM_Labels.csd",
    },
}

#: feature dims of the standard CSD features
CSD_DIMS = {"glove_vectors": 300, "COVAREP": 74, "FACET 4.1": 47, "FACET 4.2": 35}


#: file names of the three CSD roles the word-level recipe reads besides the modalities
WORDS, LABELS = "words", "labels"


def mfn_sources(dataset: str) -> dict[str, tuple[str, str, int | None]]:
    """{file name: (URL, git blob sha1, size)} of every pinned MFN file of ``dataset`` (empty when none)."""
    if dataset not in MFN_FOLDERS:
        return {}
    repo_dir, _ = MFN_FOLDERS[dataset]
    out = {}
    for path, blob, size in MFN_FILES:
        folder, _, name = path.rpartition("/")
        if folder == repo_dir:
            out[name] = (f"{MFN_BASE_URL}/{path}", blob, size)
    return out


def csd_files(dataset: str, features: dict[str, str]) -> dict[str, tuple[str, str]]:
    """{role: (local file name, URL)}: ``words`` (the word-vector sequence, which times the words and is the
    text modality), each other modality's feature file, and ``labels``."""
    table = CSD_FILES[dataset]
    chosen = {"text": features.get("text", "glove_vectors"), **{m: f for m, f in features.items() if m != "text"}}
    out = {}
    for modality, feature in chosen.items():
        if feature not in table or feature in (WORDS, LABELS):
            known = sorted(k for k in table if k not in (WORDS, LABELS))
            raise ValueError(f"{dataset}: no standard CSD feature {feature!r} for {modality}; known: {known}")
        out[WORDS if modality == "text" else modality] = _csd_entry(table[feature])
    out[LABELS] = _csd_entry(table[LABELS])
    return out


def _csd_entry(url_path: str) -> tuple[str, str]:
    return url_path.rsplit("/", 1)[-1], CMU_BASE_URL + url_path


@cache
def folds_of(dataset: str) -> dict[str, tuple[str, ...]]:
    """The standard folds of ``dataset`` (video ids per split) from ``folds/<dataset>.json`` beside this module."""
    from importlib import resources

    ref = resources.files(__package__) / "folds" / (dataset.replace("-", "_") + ".json")
    data = json.loads(ref.read_text())
    return {s: tuple(data[s]) for s in ("train", "valid", "test")}
