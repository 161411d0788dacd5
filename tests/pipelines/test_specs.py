"""Pipeline specs: built-ins build plain sklearn pipelines; user TOML specs load or fail clearly."""

import pytest
from optuna.distributions import FloatDistribution
from sklearn.pipeline import Pipeline

from fdt.pipelines.errors import UnknownPipelineError
from fdt.pipelines.specs import BUILTIN_SPECS, SpecError, build_pipeline, get_spec, load_specs

USER_SPECS = """
[pipelines.svm-poly]
description = "polynomial SVM after PCA"
pca = 2
classifier = "svc"
params = { kernel = "poly" }
[pipelines.svm-poly.space]
"classifier__C" = { type = "float", low = 0.001, high = 1000.0, log = true }
"classifier__degree" = { type = "int", low = 2, high = 4 }
"""


@pytest.mark.parametrize("name", ["svm-linear", "svm-rbf", "logreg", "random-forest", "knn"])
def test_builtin_spec_builds_a_pipeline_whose_space_names_exist(name):
    pipeline = build_pipeline(name, random_state=0)
    assert isinstance(pipeline, Pipeline) and pipeline.steps[-1][0] == "classifier"
    params = pipeline.get_params()
    assert BUILTIN_SPECS[name].space and all(key in params for key in BUILTIN_SPECS[name].space)


def test_user_spec_from_toml(tmp_path):
    path = tmp_path / "pipelines.toml"
    path.write_text(USER_SPECS)
    spec = load_specs(path)["svm-poly"]
    pipeline = spec.build(random_state=0)
    assert [name for name, _ in pipeline.steps] == ["scaler", "pca", "classifier"]
    assert pipeline.get_params()["classifier__kernel"] == "poly"
    assert spec.distributions()["classifier__C"] == FloatDistribution(0.001, 1000.0, log=True)
    assert spec.grid(3)["classifier__degree"] == [2, 3, 4]
    assert build_pipeline("svm-poly", specs_file=path).get_params()["pca__n_components"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[pipelines.logreg]\nclassifier = "svc"', "shadow the built-in"),
        ('[pipelines.x]\nclassifier = "svc"\nspace = { "classifier__C" = { type = "float", low = 2, high = 1 } }', "low < high"),
        ('[pipelines.x]\nclassifier = "svc"\nspace = { "C" = { type = "float", low = 1, high = 2 } }', "step__param"),
        ('[pipelines.x]\nclassifier = "nope.Nothing"', "not a short name"),
        ('[pipelines.x]\nclasifier = "svc"', "unknown key"),
        ('[pipelines.x]\nclassifier = "svc"\nparams = { colour = 1 }', "colour"),
        ("[pipelines", "not valid TOML"),
    ],
)
def test_malformed_user_spec_is_refused(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_specs(path)


def test_unknown_pipeline_lists_valid_names():
    with pytest.raises(UnknownPipelineError, match="unknown pipeline 'svm'.*svm-linear"):
        get_spec("svm")
