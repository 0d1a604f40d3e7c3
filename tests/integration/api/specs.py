"""Specs and code archives the API and trigger tests submit."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

SNAPSHOT = "sha256-" + "0" * 64

#: Self-contained: storage URIs only, so it compiles without a folder (a blob, a bare HTTP body).
SELF_CONTAINED = textwrap.dedent(
    f"""\
    $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
    type: pipeline
    display_name: api-test
    inputs:
      numbers:
        type: uri_folder
        path: azureml://datastores/workspaceblobstore/paths/tests/numbers
      threshold: 0.5
    jobs:
      count:
        type: command
        command: python count.py --data ${{{{inputs.numbers}}}} --threshold ${{{{inputs.threshold}}}}
        code: azureml://datastores/snapshots/paths/{SNAPSHOT}
        environment: azureml:AzureML-sklearn-1.0@latest
        inputs:
          numbers: ${{{{parent.inputs.numbers}}}}
          threshold: ${{{{parent.inputs.threshold}}}}
    """
)

#: Relative paths: needs its folder (a zip sent along, or ``fanout submit``).
WITH_FOLDER = textwrap.dedent(
    """\
    type: pipeline
    display_name: zipped
    inputs:
      numbers:
        type: uri_folder
        path: ./data/numbers
    jobs:
      count:
        type: command
        command: python side_effect.py --data ${{inputs.numbers}}
        code: ./src
        environment: azureml:AzureML-sklearn-1.0@latest
        inputs:
          numbers: ${{parent.inputs.numbers}}
    """
)

#: Invalid: a misspelt job type (reported with its line and column).
BROKEN = textwrap.dedent(
    """\
    type: pipeline
    jobs:
      a:
        type: paralel
        inputs:
          x: ${{parent.inputs.missing}}
    """
)


def side_effect_script(marker: Path) -> str:
    """An entry script that, if it were ever imported or run, would create ``marker``."""
    return f"from pathlib import Path\nPath({str(marker)!r}).write_text('user code ran')\n"


def zip_folder(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
