"""Built-in datasets: factory(cfg) -> object with .spec and .split(name)."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.datasets"


@hookimpl
def register_datasets(register):
    register(
        "synthetic-factors",
        f"{_P}.synthetic:SyntheticFactors",
        config=f"{_P}.synthetic:SyntheticConfig",
        help="embedded generated data with known shared and private factors (MOSI-shaped by default)",
    )
    register(
        "ict-mmmo",
        f"{_P}.ict_mmmo:ICTMMMO",
        config=f"{_P}.ict_mmmo:ICTMMMOConfig",
        help="ICT-MMMO movie-review opinions (MFN h5): binary > 3.5 or 1..5 regression",
    )
    register(
        "youtube",
        f"{_P}.youtube:YouTube",
        config=f"{_P}.youtube:YouTubeConfig",
        help="YouTube opinion videos (MFN h5): 3-class sentiment",
    )
    register(
        "cmu-mosi",
        f"{_P}.cmu_mosi:CMUMOSI",
        config=f"{_P}.cmu_mosi:MOSIConfig",
        help="CMU-MOSI sentiment regression in [-3, 3] (MFN h5, CSD or processed pickle)",
    )
    register(
        "cmu-mosei",
        f"{_P}.cmu_mosei:CMUMOSEI",
        config=f"{_P}.cmu_mosei:MOSEIConfig",
        help="CMU-MOSEI sentiment in [-3, 3] or six emotions (CSD or processed pickle)",
    )
    register(
        "iemocap",
        f"{_P}.iemocap:IEMOCAP",
        config=f"{_P}.iemocap:IEMOCAPConfig",
        help="IEMOCAP four emotions, one binary task per emotion (processed pickle)",
    )
    register(
        "pom",
        f"{_P}.pom:POM",
        config=f"{_P}.pom:POMConfig",
        help="POM personality traits: 17-target regression in [1, 7] (MFN h5 or CSD)",
    )
    register(
        "moud",
        f"{_P}.moud:MOUD",
        config=f"{_P}.moud:MOUDConfig",
        help="MOUD Spanish opinion utterances: sentiment classification (MFN folder layout)",
    )
    register(
        "tensors",
        f"{_P}.tensors:Tensors",
        config=f"{_P}.tensors:TensorsConfig",
        help="your own data: the .npz `mfm-bench prepare` writes from .csd files; task from params (docs/datasets.md)",
    )
    register(
        "paired-digits",
        f"{_P}.paired_digits:PairedDigits",
        config=f"{_P}.paired_digits:PairedDigitsConfig",
        help="scikit-learn 8x8 digit images paired by label with MNIST-1D signals, generated offline (extra: digits)",
    )


@hookimpl
def register_metrics(register):
    register(
        "cmu-sentiment",
        function=f"{_P}.sentiment:cmu_sentiment",
        resampled=f"{_P}.sentiment:resampled_cmu_sentiment",
        help="sentiment in [-3, 3]: acc2 and f1 (has0 and non0), acc7, acc5, mae, corr (see datasets.sentiment)",
    )
    register("acc2_has0", True, help="binary accuracy, label >= 0 vs < 0 (zero labels count as non-negative)")
    register("f1_has0", True, help="weighted F1 of the has0 binary split")
    register("acc2_non0", True, help="binary accuracy, > 0 vs < 0, zero labels dropped")
    register("f1_non0", True, help="weighted F1 of the non0 binary split")
    register("acc7", True, help="7-class accuracy: clipped to [-3, 3], rounded half to even")
    register("acc5", True, help="5-class accuracy: clipped to [-2, 2], rounded half to even")
