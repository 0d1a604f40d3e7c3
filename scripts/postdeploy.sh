#!/bin/sh
# azd post-deploy hook (posix): run scripts/postdeploy.py with the project's virtual environment, which
# has the packages function_app needs to list its blob triggers (`make setup` creates it).
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
exec "$python" scripts/postdeploy.py
