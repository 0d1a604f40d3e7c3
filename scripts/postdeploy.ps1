# azd post-deploy hook (Windows): run scripts/postdeploy.py with the project's virtual environment.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..')
$python = if (Test-Path '.venv/Scripts/python.exe') { '.venv/Scripts/python.exe' } else { 'python' }
& $python scripts/postdeploy.py
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
