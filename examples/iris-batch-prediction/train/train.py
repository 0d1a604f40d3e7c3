"""Train a random forest on the iris measurements and save it to the model output folder."""

import argparse
import pickle
from pathlib import Path

import pandas as pd
from sklearn.ensemble import RandomForestClassifier

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--training_data", required=True)
    parser.add_argument("--n_estimators", type=int, default=50)
    parser.add_argument("--random_state", type=int, default=0)
    parser.add_argument("--model_output", required=True)
    args, _ = parser.parse_known_args()

    frame = pd.read_csv(args.training_data)
    model = RandomForestClassifier(n_estimators=args.n_estimators, random_state=args.random_state)
    model.fit(frame[FEATURES], frame["variety"])
    accuracy = model.score(frame[FEATURES], frame["variety"])

    out = Path(args.model_output)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "model.pkl", "wb") as handle:
        pickle.dump(model, handle)
    (out / "features.txt").write_text("\n".join(FEATURES) + "\n")
    print(f"trained {args.n_estimators} trees on {len(frame)} rows; training accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
