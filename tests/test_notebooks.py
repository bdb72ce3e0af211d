"""The classroom notebooks: stored without outputs, and each one executes headless in quick mode.

Each notebook asserts its own key result (an accuracy floor, the VQE finding the exhaustive-search optimum,
energies matching exact diagonalisation, ...), so executing it is the test. Quick mode
(WORKBENCH_QUICK=1) keeps every notebook well under two minutes on two CPU cores.

Executing needs a Jupyter kernel named python3 for this environment:
    python -m ipykernel install --sys-prefix --name python3
"""

from __future__ import annotations

import re

import nbformat
import pytest

from workbench import notebooks

EXPECTED = [
    "01_vqc_circles", "02_vqe_architecture_search", "03_hybrid_digits", "04_tyxonq_3x3",
    "05_parameter_input_vqe", "06_choosing_a_gradient_method", "07_hardware_style_training",
    "08_surrogate_gradients_and_rl",
    "09_architecture_search",
]
# The paper-reproduction notebooks (notebooks/ may hold others, e.g. 00_jupyter_workbench, tested elsewhere).
PATHS = notebooks.notebook_paths(EXPECTED)


def test_the_notebooks_are_present_in_order():
    stems = [p.stem for p in notebooks.notebook_paths()]
    assert [s for s in stems if s in EXPECTED] == EXPECTED


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell is stored with outputs; clear them"
            assert cell.execution_count is None, f"{path.name}: a code cell is stored with an execution count"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_teachable_and_offline(path):
    """A narrative, a 'Try this' section, quick mode, offline Plotly, and asserted results."""
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "## Try this" in markdown
    assert "WORKBENCH_QUICK" in code
    assert 'pio.renderers.default = "notebook"' in code
    assert "notebook_connected" not in code and "cdn" not in code.lower()
    assert re.search(r"^\s*assert ", code, re.M), f"{path.name} asserts no result"


def test_unknown_notebook_name_is_explained():
    with pytest.raises(notebooks.NotebookError, match="no notebook matches"):
        notebooks.notebook_paths(["99_missing"])


def test_names_select_by_number_and_stem():
    assert [p.stem for p in notebooks.notebook_paths(["05", "01_vqc_circles"])] == [EXPECTED[4], EXPECTED[0]]


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_runs_in_quick_mode(path):
    nb = notebooks.execute(path, quick=True, timeout=600)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # The file on disk is untouched: executing never writes outputs back.
    assert all(c.outputs == [] for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_render_writes_self_contained_html(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(notebooks.notebooks_app, ["render", "--out", str(tmp_path), "--quick",
                                                          "--only", "05"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "05_parameter_input_vqe.html").read_text(encoding="utf-8")
    assert "plotly-graph-div" in html and "Plotly.newPlot" in html
    # plotly.js itself is inline: no <script src=...> pointing at a Plotly CDN.
    assert not re.search(r"<script[^>]+src=\"[^\"]*(plot\.ly|plotly)[^\"]*\"", html)
    assert "plotly.js v" in html
    assert "05_parameter_input_vqe.html" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "mean relative error" in html
