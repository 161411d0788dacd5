"""Grouped splits: no group crosses a split, and grouped CV is honest where ungrouped CV leaks."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from fdt.pipelines.errors import SplitError
from fdt.pipelines.splits import assign_groups, grouped_folds, holdout_masks, parse_fractions


def near_duplicates(seed=0):
    """Labels are random per group, features are pure noise: no real signal, only duplicates to memorise."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(40), 5)
    labels = rng.permutation(np.repeat([0, 1], 20))[groups]
    X = rng.normal(size=(40, 8))[groups] + rng.normal(scale=0.01, size=(200, 8))
    return X, labels, groups.astype(str)


def test_grouped_cv_is_honest_where_ungrouped_cv_leaks():
    X, y, groups = near_duplicates()
    model = KNeighborsClassifier(n_neighbors=1)
    leaky = cross_val_score(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring="roc_auc").mean()
    honest = cross_val_score(model, X, y, cv=grouped_folds(y, groups, 5, random_state=0), scoring="roc_auc").mean()
    assert leaky > 0.95  # a near-duplicate of every test image sits in training
    assert honest < 0.7 and honest < leaky - 0.3


def test_no_group_crosses_a_fold():
    X, y, groups = near_duplicates()
    folds = grouped_folds(y, groups, 5, random_state=0)
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(len(y)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert set(y[test]) == {0, 1}


def test_holdout_split_keeps_groups_whole_and_fractions_per_source():
    groups = np.array([f"g{i // 2}" for i in range(400)])
    sources = np.repeat(["real", "fake"], 200)
    masks = holdout_masks(groups, assign_groups(groups, sources, (0.8, 0.1, 0.1), random_state=3))
    parts = [set(groups[masks[p]]) for p in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    for source in ("real", "fake"):
        mine = sources == source
        assert masks["test"][mine].sum() == 20 and masks["train"][mine].sum() == 160


def test_assignment_is_seeded():
    groups = [f"g{i}" for i in range(50)]
    assert assign_groups(groups, ["s"] * 50, random_state=1) == assign_groups(groups, ["s"] * 50, random_state=1)
    assert assign_groups(groups, ["s"] * 50, random_state=1) != assign_groups(groups, ["s"] * 50, random_state=2)


@pytest.mark.parametrize(("text", "expected"), [("80/10/10", (0.8, 0.1, 0.1)), ("0.7,0.1,0.2", (0.7, 0.1, 0.2)), ("9/0/1", (0.9, 0.0, 0.1))])
def test_parse_fractions(text, expected):
    assert parse_fractions(text) == pytest.approx(expected)


@pytest.mark.parametrize(("text", "message"), [("80/20", "three"), ("0/50/50", "non-empty train"), ("a/b/c", "three")])
def test_bad_fractions_are_refused(text, message):
    with pytest.raises(SplitError, match=message):
        parse_fractions(text)


def test_single_class_is_refused_before_folding():
    with pytest.raises(SplitError, match="only one class \\(real images\\)"):
        grouped_folds(np.zeros(10, int), np.arange(10), 2)


def test_a_groups_part_ignores_other_sources_row_order_and_the_fakes_made_from_it():
    photos = [f"photo{i}" for i in range(40)]
    alone = assign_groups(photos, ["coco"] * 40, random_state=5, labels=[0] * 40)
    # add another source, fakes that share their photo's group, and shuffle the rows
    groups = photos + [f"gan{i}" for i in range(30)] + photos[:20]
    strata = ["coco"] * 40 + ["dcgan"] * 30 + ["sd-inpaint"] * 20
    labels = [0] * 40 + [1] * 70
    order = np.random.default_rng(0).permutation(len(groups))
    together = assign_groups([groups[i] for i in order], [strata[i] for i in order], random_state=5, labels=[labels[i] for i in order])
    assert {g: together[g] for g in photos} == alone
    assert sum(part == "test" for part in alone.values()) == 4


def test_two_seeds_never_share_a_study(featureset_factory, tmp_path):
    import optuna

    from fdt.pipelines.evaluation import study_name, tune_condition
    from fdt.pipelines.specs import get_spec

    data = featureset_factory({"real": (0, np.zeros(3)), "fake": (1, np.array([2.0, 0, 0]))}, per_source=20, dim=3)
    spec = get_spec("logreg")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    names = {seed: study_name("m", data, spec, seed, (0.8, 0.1, 0.1), 3) for seed in (0, 1)}
    assert names[0] != names[1]
    assert study_name("m", data, spec, 0, (0.8, 0.1, 0.1), 3) != study_name("m", data, spec, 0, (0.7, 0.1, 0.2), 3)
    assert study_name("m", data, spec, 0, (0.8, 0.1, 0.1), 3) != study_name("m", data, spec, 0, (0.8, 0.1, 0.1), 4)
    for seed in (0, 1):
        tune_condition(data, spec, n_trials=2, cv=3, random_state=seed, storage=storage, study_name=names[seed])
    studies = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    assert studies == {names[0]: 2, names[1]: 2}
