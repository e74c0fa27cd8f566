"""Built-in datasets: factory(cfg) -> object with .spec and .split(name)."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.datasets"


@hookimpl
def register_datasets(register):
    register("synthetic-factors", f"{_P}.synthetic:SyntheticFactors", config=f"{_P}.synthetic:SyntheticConfig", help="embedded generated data with known shared and private factors (MOSI-shaped by default)")
