"""Entry script of the train_per_partition parallel job: one model per (Store, Brand) partition.

With partition_keys, each mini-batch is all the rows of one key combination, as a pandas DataFrame, and
run() gets a second argument whose partition_key_value is {"Store": ..., "Brand": ...}. Each call trains
a linear demand model, saves it under <model_folder>/<Store>/<Brand>/model.pkl, and returns a one-row
summary; the rows are collected into the model_summary output (append_row_to).
"""

import argparse
import pickle
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error

args = None


def init():
    global args
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--target_col", required=True)
    parser.add_argument("--feature_cols", required=True)
    parser.add_argument("--model_folder", required=True)
    args, _ = parser.parse_known_args()


def run(mini_batch: pd.DataFrame, mini_batch_context) -> pd.DataFrame:
    keys = dict(mini_batch_context.partition_key_value)
    features = args.feature_cols.split(",")
    frame = mini_batch.sort_values("WeekStarting")
    model = LinearRegression().fit(frame[features], frame[args.target_col])
    error = mean_absolute_error(frame[args.target_col], model.predict(frame[features]))

    folder = Path(args.model_folder, *[str(value) for value in keys.values()])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "model.pkl", "wb") as handle:
        pickle.dump(model, handle)

    return pd.DataFrame([{**keys, "rows": len(frame), "mae": round(error, 2)}])
