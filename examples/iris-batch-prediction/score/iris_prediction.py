"""Entry script of the batch_prediction parallel job: score mini-batches of iris rows.

Written as for Azure ML: init() once per worker process, run(mini_batch) per mini-batch (a pandas
DataFrame here, because the input is a tabular MLTable), arguments read with parse_known_args.
"""

import argparse
import os
import pickle
from pathlib import Path

import pandas as pd

try:
    from azureml_user.parallel_run import EntryScript
except ImportError:  # running outside a parallel job
    EntryScript = None

model = None
features: list[str] = []


def init():
    global model, features
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--model", type=str, required=True)
    args, unknown = parser.parse_known_args()

    model_dir = Path(args.model)
    with open(model_dir / "model.pkl", "rb") as handle:
        model = pickle.load(handle)
    features = (model_dir / "features.txt").read_text().split()

    if EntryScript is not None:
        EntryScript().logger.info("model loaded from %s; other arguments: %s", model_dir, unknown)
    print(f"init: model from {model_dir}, AZUREML_BI_OUTPUT_PATH={os.environ.get('AZUREML_BI_OUTPUT_PATH')}")


def run(mini_batch: pd.DataFrame) -> pd.DataFrame:
    result = mini_batch[features].copy()
    result["variety"] = model.predict(mini_batch[features])
    return result
