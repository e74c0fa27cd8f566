"""What a plugin's forward returns, checked where it is first used: a mistake is one error naming the plugin,
what it returned and what it must return (docs/plugins.md, "The contracts")."""

import pytest
import torch
from torch import nn

from mfm_bench import hookimpl
from mfm_bench.contracts import Output
from mfm_bench.nn import Head, masked_mean, task_loss
from mfm_bench.testing import temporary_plugin
from mfm_bench.training import TrainConfig, Trainer, TrainingError, predict


def _model(returns):
    class Model(nn.Module):
        def __init__(self, spec, **params):
            super().__init__()
            self.task = spec.task
            self.head = Head(spec.task, spec.modalities[0].dim, 0)

        def forward(self, batch):
            m = next(iter(batch.inputs))
            x = batch.inputs[m]
            pred = self.head(masked_mean(x, batch.mask[m]) if x.dim() == 3 else x)
            loss = task_loss(self.task, pred, batch.target)
            return {
                "output": Output(pred, {"label": loss}),
                "per-sample-loss": Output(pred, {"label": (pred - batch.target).abs()}),
                "float-loss": Output(pred, {"label": loss, "reg": 0.1}),
                "no-label": Output(pred, {"task": loss}),
                "tuple": (pred, {"label": loss}),
                "dict": {"prediction": pred, "losses": {"label": loss}},
                "tensor": pred,
            }[returns]

    return Model


class Models:
    @hookimpl
    def register_models(self, register):
        for kind in ("output", "tuple", "dict", "tensor", "per-sample-loss", "float-loss", "no-label"):
            register(f"returns-{kind}", _model(kind))


@pytest.fixture(scope="module")
def data():
    from mfm_bench.registry import get_registry

    return get_registry().build("dataset", "synthetic-factors", n_train=16, n_valid=8, n_test=8)


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("tuple", "tuple of 2 (tensor [8], dict with keys ['label'])"),
        ("dict", "dict with keys ['prediction', 'losses']"),
        ("tensor", "tensor [8]"),
    ],
)
def test_a_model_that_returns_no_output_is_named_with_what_it_returned(data, kind, shown):
    # a tuple used to fail deep in the trainer ("'tuple' object has no attribute 'losses'"), naming no plugin
    with temporary_plugin(Models(), "outputs-under-test", package="my-models") as reg:
        model = reg.build("model", f"returns-{kind}", data.spec)
        trainer = Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu"))
        for call in (
            lambda: trainer.evaluate_losses(model, data.split("valid")),  # the runner's first call
            lambda: trainer.fit(model, data.split("train"), data.split("valid")),
            lambda: predict(model, data.split("test")),
        ):
            with pytest.raises(TrainingError) as e:
                call()
            msg = str(e.value)
            assert f"model 'returns-{kind}' from my-models (plugin outputs-under-test)" in msg
            assert f"forward(batch) returned {shown}" in msg
            assert "not a mfm_bench.contracts.Output" in msg and "return Output(prediction, losses=" in msg


def test_a_model_that_returns_output_trains(data):
    with temporary_plugin(Models(), "outputs-under-test") as reg:
        model = reg.build("model", "returns-output", data.spec)
        result = Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu")).fit(
            model, data.split("train"), data.split("valid")
        )
        assert result.epochs_run == 1
        assert predict(model, data.split("test")).prediction.shape == (8,)


class PooledOnly(nn.Module):
    def __init__(self, input_dim, hidden=8):
        super().__init__()
        self.proj = nn.Linear(input_dim, hidden)
        self.output_dim = hidden

    def forward(self, x, mask):
        return self.proj(masked_mean(x, mask) if x.dim() == 3 else x)  # pooled [B, H] only


class TooNarrow(PooledOnly):
    def __init__(self, input_dim, hidden=8):
        super().__init__(input_dim, hidden)
        self.output_dim = hidden * 2  # declares 16, returns 8

    def forward(self, x, mask):
        pooled = super().forward(x, mask)
        return pooled, pooled.unsqueeze(1)


class Encoders:
    @hookimpl
    def register_encoders(self, register):
        register("pooled-only", PooledOnly)
        register("too-narrow", TooNarrow)


@pytest.mark.parametrize(
    ("encoder", "returned", "fix"),
    [
        ("pooled-only", "returned tensor [8, 8]; expected a tuple (pooled [8, 8], sequence [8, T, 8])", "return both"),
        (
            "too-narrow",
            "returned tuple of 2 (tensor [8, 8], tensor [8, 1, 8]); "
            "expected a tuple (pooled [8, 16], sequence [8, T, 16])",
            "make both outputs 16 wide, or set self.output_dim",
        ),
    ],
)
def test_an_encoder_that_breaks_its_contract_is_named_with_its_shapes(data, encoder, returned, fix):
    # a pooled-only encoder used to be indexed as e[0] (its first sample) and fail in the fusion, naming neither
    from mfm_bench.encoder_kinds import EncoderOutputError

    with temporary_plugin(Encoders(), "encoders-under-test", package="my-encoders") as reg:
        model = reg.build("model", "supervised", data.spec, encoder=encoder, fusion="concat")
        with pytest.raises(EncoderOutputError) as e:
            Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu")).evaluate_losses(model, data.split("valid"))
    msg = str(e.value)
    assert f"encoder {encoder!r} from my-encoders (plugin encoders-under-test), given modality " in msg
    assert returned in msg and fix in msg and "docs/plugins.md" in msg


class SpecVsData:
    """A dataset whose spec says imu is 6 wide; ``data`` says what its samples really hold."""

    def __init__(self, data, held=True):
        from mfm_bench.contracts import DatasetSpec, Modality, Task, TensorSplit

        self.spec = DatasetSpec(
            "gait",
            (Modality("imu", 6), Modality("photo", 3, "image", (3, 4, 4))),
            Task("classification", n_classes=2),
        )
        n = 4
        inputs = {m: torch.zeros(n, *shape) for m, shape in data.items()}
        inputs = {m: x + torch.arange(n).view(n, *[1] * (x.dim() - 1)) for m, x in inputs.items()}
        mask = {m: torch.ones(n, 1, dtype=torch.bool) for m in inputs}
        split = TensorSplit(inputs, mask, torch.tensor([0, 1, 0, 1]), [str(i) for i in range(n)])
        self._split = split if held else [split[i] for i in range(n)]

    def split(self, name):
        return self._split


@pytest.mark.parametrize("held", [True, False], ids=["tensor-split", "list-of-samples"])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"imu": (5, 7), "photo": (3, 4, 4)},
            "modality 'imu' is [5, 7] per sample, but the spec says a sequence [T, D] with D = 6",
        ),
        ({"imu": (5, 6)}, "its samples have no input 'photo', which its spec lists (inputs: ['imu'])"),
        (
            {"imu": (5, 6), "photo": (4, 4, 3)},
            "modality 'photo' is [4, 4, 3] per sample, but the spec says an image [C, H, W] with C = 3",
        ),
        ({"imu": (6,), "photo": (3, 4, 4)}, "modality 'imu' is [6] per sample, but the spec says a sequence [T, D]"),
    ],
)
def test_a_dataset_whose_data_disagree_with_its_spec_is_named_before_any_model_runs(data, message, held):
    # the encoders are built from the spec: a 7-wide imu used to fail inside the LSTM ("Expected 6, got 7"),
    # naming neither the dataset nor the modality
    from mfm_bench.checks import DataError, check_dataset

    with pytest.raises(DataError) as e:
        check_dataset("gait", SpecVsData(data, held))
    assert "dataset 'gait', split 'train': " + message in str(e.value)
    assert "docs/plugins.md" in str(e.value)


def test_a_dataset_that_matches_its_spec_passes():
    from mfm_bench.checks import check_dataset

    assert check_dataset("gait", SpecVsData({"imu": (5, 6), "photo": (3, 4, 4)})) == []


@pytest.mark.parametrize(
    ("task", "pred", "target", "message"),
    [
        ("regression", (4, 1), (4,), "task_loss(regression): the prediction is [4, 1] and the target [4]; "),
        ("multi_regression", (4,), (4, 2), "a multi_regression prediction is [B, 2]"),
    ],
)
def test_task_loss_refuses_a_prediction_of_another_shape_than_the_target(task, pred, target, message):
    # an assert, gone under python -O, where L1 then broadcast [4, 1] against [4] to a [4, 4] loss
    from mfm_bench.contracts import Task

    t = Task(task, targets=("a", "b") if task == "multi_regression" else ())
    with pytest.raises(ValueError) as e:
        task_loss(t, torch.zeros(pred), torch.zeros(target))
    assert message in str(e.value) and "mfm_bench.nn.shape_prediction(task, out)" in str(e.value)


class Unpooled(nn.Module):
    """Returns the pooled encodings stacked [B, M, H], not fused to [B, output_dim]."""

    def __init__(self, input_dims, **params):
        super().__init__()
        self.output_dim = next(iter(input_dims.values()))

    def forward(self, inputs, mask):
        return torch.stack(list(inputs.values()), dim=1)


class Fusions:
    @hookimpl
    def register_fusions(self, register):
        register("unpooled", Unpooled)


def test_a_fusion_that_returns_another_shape_is_named_with_its_shapes(data):
    # the head used to fail on a bare "mat1 and mat2 shapes cannot be multiplied"
    from mfm_bench.encoder_kinds import FusionOutputError

    with temporary_plugin(Fusions(), "fusions-under-test", package="my-fusions") as reg:
        model = reg.build("model", "supervised", data.spec, fusion="unpooled", encoder="mean")
        with pytest.raises(FusionOutputError) as e:
            Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu")).evaluate_losses(model, data.split("valid"))
    msg = str(e.value)
    assert msg.startswith("fusion 'unpooled' from my-fusions (plugin fusions-under-test) returned tensor [8, 3, 32]; ")
    assert "expected the fused tensor [8, 32] (its output_dim is 32)" in msg and "docs/plugins.md" in msg


def test_a_raw_fusion_is_refused_an_image_modality_at_build():
    # mfn, mult and ef_lstm step through time: an image used to fail inside their forward on an assert
    from mfm_bench.encoder_kinds import EncoderKindError
    from mfm_bench.registry import get_registry

    reg = get_registry()
    ds = reg.build("dataset", "paired-digits")
    with pytest.raises(EncoderKindError) as e:
        reg.build("model", "supervised", ds.spec, fusion="mfn")
    assert "fusion 'mfn' reads the raw modalities as sequences [T, D] (no encoder), and modality 'image' of " in str(
        e.value
    )
    assert "encoder: {image: conv-image, default: mean}" in str(e.value)


@pytest.mark.parametrize("model", ["mfm", "misa", "symile"])
def test_every_model_that_builds_encoders_names_one_that_returns_only_its_pooled_tensor(data, model):
    # MFM unpacked the pooled tensor into its rows ("too many values to unpack"), MISA and Symile took its first row
    from mfm_bench.encoder_kinds import EncoderOutputError

    with temporary_plugin(Encoders(), "encoders-under-test", package="my-encoders") as reg:
        extra = {"encoder_width": "plugin"} if model == "mfm" else {}  # its encoders take no hidden param
        net = reg.build("model", model, data.spec, encoder="pooled-only", **extra)
        with pytest.raises(EncoderOutputError) as e:
            Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu")).evaluate_losses(net, data.split("valid"))
    assert "encoder 'pooled-only' from my-encoders (plugin encoders-under-test), given modality '" in str(e.value)
    assert "returned tensor [8, 8]; expected a tuple (pooled [8, 8], sequence [8, T, 8])" in str(e.value)


@pytest.mark.parametrize(
    ("kind", "shown"),
    [("per-sample-loss", "Output.losses['label'] = tensor [8]"), ("float-loss", "Output.losses['reg'] = float")],
)
def test_a_loss_that_is_not_a_scalar_tensor_is_named(data, kind, shown):
    # a per-sample loss failed in backward ("grad can be implicitly created only for scalar outputs"), a float
    # in the sum's backward, naming neither the model nor the term
    with temporary_plugin(Models(), "outputs-under-test", package="my-models") as reg:
        model = reg.build("model", f"returns-{kind}", data.spec)
        with pytest.raises(TrainingError) as e:
            Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu")).fit(
                model, data.split("train"), data.split("valid")
            )
    msg = str(e.value)
    assert f"model 'returns-{kind}' from my-models (plugin outputs-under-test)" in msg
    assert f"forward(batch) returned {shown}; each loss is a scalar tensor" in msg


def test_a_tensor_split_whose_tensors_disagree_on_the_sample_count_is_refused():
    # an assert, gone under python -O, where the split then paired samples with other samples' targets
    from mfm_bench.contracts import TensorSplit

    target = torch.zeros(4)
    with pytest.raises(ValueError, match=r"inputs\['imu'\] holds 3 samples \(first dim of \[3, 5, 6\]\) and target 4"):
        TensorSplit({"imu": torch.zeros(3, 5, 6)}, {"imu": torch.ones(4, 5, dtype=torch.bool)}, target, list("abcd"))
    with pytest.raises(ValueError, match="3 ids for 4 targets; give one id per sample"):
        TensorSplit({"imu": torch.zeros(4, 5, 6)}, {"imu": torch.ones(4, 5, dtype=torch.bool)}, target, list("abc"))


def test_as_sequence_refuses_an_image():
    from mfm_bench.nn import as_sequence

    with pytest.raises(ValueError, match=r"got \(2, 1, 8, 8\) and \(2, 1\); an image modality needs an encoder"):
        as_sequence(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, dtype=torch.bool))


def test_a_model_without_a_label_loss_is_named_unless_it_selects_on_the_total(data):
    # the trainer used to select on every term summed without a word, while the docs and the run's record said
    # the validation label loss kept the checkpoint, stopped early and judged "did not train"
    with temporary_plugin(Models(), "outputs-under-test", package="my-models") as reg:
        model = reg.build("model", "returns-no-label", data.spec)
        trainer = Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu"))
        with pytest.raises(TrainingError) as e:
            trainer.selection_loss(model, trainer.evaluate_losses(model, data.split("valid")))  # the runner's first
        msg = str(e.value)
        assert "model 'returns-no-label' from my-models (plugin outputs-under-test)" in msg
        assert "returned losses ['task'] with none under \"label\"" in msg
        assert "train.select_on: total" in msg
        with pytest.raises(TrainingError, match='none under "label"'):
            trainer.fit(model, data.split("train"), data.split("valid"))
        total = Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu", select_on="total"))
        result = total.fit(reg.build("model", "returns-no-label", data.spec), data.split("train"), data.split("valid"))
        assert result.epochs_run == 1 and result.best_valid_loss == pytest.approx(result.history[0]["valid_task"])
