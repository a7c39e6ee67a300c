"""Cross-validated accuracy of the embedding judge's head, per axis (needs the [local] extra).

Five folds; an aligned/misaligned pair of example answers always lands in the same fold, so a test
answer is never scored by a head that saw its near-twin. Prints accuracy at 0.5 and the Brier score.
"""

from __future__ import annotations

import numpy as np

from pytest_aligngate.judging.embedding import (
    Embedder,
    _require_extra,
    cross_validated_predictions,
    training_set,
)


def main() -> None:
    examples = training_set()
    features = Embedder(_require_extra()).embed(examples.texts)
    labels, axes = np.array(examples.labels), np.array(examples.axes)
    predicted = cross_validated_predictions(features, labels, np.array(examples.pairs))
    correct = (predicted >= 0.5) == (labels == 1.0)
    print(f"{'axis':<24} {'n':>4} {'accuracy':>9} {'brier':>7}")
    for axis in [*dict.fromkeys(examples.axes), "all"]:
        rows = np.ones(len(labels), bool) if axis == "all" else axes == axis
        brier = float(np.mean((predicted[rows] - labels[rows]) ** 2))
        print(f"{axis:<24} {rows.sum():>4} {correct[rows].mean():>9.2f} {brier:>7.3f}")


if __name__ == "__main__":
    main()
